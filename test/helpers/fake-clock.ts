import type { Clock, TimerHandle } from '../../src/domain/clock.js'

interface Timer {
  at: number
  fn: () => void
}

/** A clock the test moves by hand: timers fire only inside advance(). */
export class FakeClock implements Clock {
  private current: number
  private nextId = 1
  private readonly timers = new Map<number, Timer>()

  constructor(start = Date.parse('2026-01-01T00:00:00.000Z')) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn })
    return id as unknown as TimerHandle
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number)
  }

  /** Moves time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      this.timers.delete(due[0])
      this.current = Math.max(this.current, due[1].at)
      due[1].fn()
    }
    this.current = target
  }

  get pending(): number {
    return this.timers.size
  }
}
