import type { LatchkeyEvent } from '../../domain/events.js'
import type { PgDb } from './database.js'

/** What every repository of the PostgreSQL store shares. */
export interface PgContext {
  db: PgDb
  newId: () => string
  /** Current time as ISO 8601, from the injected clock; events get their `created_at` from it. */
  now: () => string
  /** Called after commit with the events a transaction recorded. */
  onEvents: (events: LatchkeyEvent[]) => void
  /** Counts deliveries written, for the next `onEvents` (the dispatcher skips the outbox read on zero). */
  deliveriesQueued: (count: number) => void
}
