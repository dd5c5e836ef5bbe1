import type { Clock, TimerHandle } from '../domain/clock.js'

/** One timer per pending attempt, armed for its deadline and cancelled when it settles. */
export class AttemptTimeouts {
  private readonly timers = new Map<string, TimerHandle>()

  constructor(
    private readonly clock: Clock,
    private readonly onDeadline: (attemptId: string) => void,
  ) {}

  arm(attemptId: string, deadlineMs: number): void {
    this.cancel(attemptId)
    const delay = Math.max(0, deadlineMs - this.clock.now())
    this.timers.set(
      attemptId,
      this.clock.setTimeout(() => {
        this.timers.delete(attemptId)
        this.onDeadline(attemptId)
      }, delay),
    )
  }

  cancel(attemptId: string): void {
    const handle = this.timers.get(attemptId)
    if (handle === undefined) return
    this.clock.clearTimeout(handle)
    this.timers.delete(attemptId)
  }

  get size(): number {
    return this.timers.size
  }

  clear(): void {
    for (const handle of this.timers.values()) this.clock.clearTimeout(handle)
    this.timers.clear()
  }
}

/** Requests waiting for an attempt to settle (sync lock/unlock, the grace wait). Resolved from the bus. */
export class SettleWaiters<T> {
  private readonly waiting = new Map<string, Set<(value: T | undefined) => void>>()

  constructor(private readonly clock: Clock) {}

  /** Resolves with the settled value, or undefined after `ms`. */
  wait(id: string, ms: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      let set = this.waiting.get(id)
      if (!set) this.waiting.set(id, (set = new Set()))
      const waiters = set
      const done = (value: T | undefined) => {
        this.clock.clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0 && this.waiting.get(id) === waiters) this.waiting.delete(id)
        resolve(value)
      }
      const timer = this.clock.setTimeout(() => done(undefined), ms)
      waiters.add(done)
    })
  }

  /** Whether anybody waits for `id` here. */
  has(id: string): boolean {
    return this.waiting.has(id)
  }

  resolve(id: string, value: T): void {
    const set = this.waiting.get(id)
    if (!set) return
    for (const done of [...set]) done(value)
  }

  /** Releases every waiter (shutdown). */
  releaseAll(): void {
    for (const [, set] of this.waiting) for (const done of [...set]) done(undefined)
  }
}
