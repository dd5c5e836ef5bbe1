import type { LatchkeyEvent } from '../domain/events.js'

/**
 * A store's notice of the events a commit recorded, with the deliveries queued since the last notice: the dispatcher
 * skips its outbox read on zero. Deliveries are counted as they are written and the count is taken only after a
 * commit, so a zero means every committed delivery was already announced; one counted in a write that did not
 * commit only costs a read.
 */
export function eventNotices(notify: (events: LatchkeyEvent[], deliveriesQueued?: number) => void): {
  onEvents: (events: LatchkeyEvent[]) => void
  deliveriesQueued: (count: number) => void
} {
  let queued = 0
  return {
    onEvents: (events) => {
      // A write without events leaves the count to the next write that has some.
      if (events.length === 0) return notify(events, 0)
      const count = queued
      queued = 0
      notify(events, count)
    },
    deliveriesQueued: (count) => {
      queued += count
    },
  }
}
