import type { LatchkeyEvent } from '../../domain/events.js'
import type { Db, WriteQueue } from './database.js'

/** What every repository of the SQLite store shares. */
export interface StoreContext {
  db: Db
  writes: WriteQueue
  newId: () => string
  /** Current time as ISO 8601; events get their `created_at` from it. */
  now: () => string
  /** Called after commit with the events a transaction recorded. */
  onEvents: (events: LatchkeyEvent[]) => void
  /** Counts one delivery inserted, for the next `onEvents` (the dispatcher skips the outbox read on zero). */
  deliveryQueued: () => void
}

export function toInt(value: boolean | null | undefined): number | null {
  return value === null || value === undefined ? null : value ? 1 : 0
}

export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(',')
}
