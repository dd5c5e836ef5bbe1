import type { Clock, TimerHandle } from '../domain/clock.js'

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    timer.unref?.()
    return timer as unknown as TimerHandle
  },
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
}
