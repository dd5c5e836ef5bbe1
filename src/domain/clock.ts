/** Time enters the core only through this interface, so tests can drive it by hand. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export interface TimerHandle {
  readonly __timer: unique symbol
}

export function iso(ms: number): string {
  return new Date(ms).toISOString()
}
