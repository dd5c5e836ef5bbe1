/** Time enters the core only through this interface, so tests can drive it by hand. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export interface TimerHandle {
  readonly __timer: unique symbol
}

let lastMs = Number.NaN
let lastIso = ''

/** ISO 8601 of an epoch-milliseconds time. The last one is kept: a loop turn asks for the same millisecond often. */
export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString()
    lastMs = ms
  }
  return lastIso
}
