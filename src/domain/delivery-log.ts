import type { DeliveryAttempt } from './delivery.js'

/**
 * The read model of the delivery APIs (docs/deliveries.md): attempts made and attempts scheduled, listed in keyset
 * pages, never offsets.
 */

/**
 * A row's place in a time-ordered delivery log. A page starts strictly after a position; rows are ordered by
 * (time, seq, scheduled), so a scheduled attempt (the v1 dialect's pending row) follows an attempt with equal time and seq.
 */
export interface LogPosition {
  time: string
  seq: number
  scheduled: boolean
}

/** An attempt's outcome as the v1 dialect names it; the Outpost dialect's `failed` is retrying or failed. */
export type AttemptOutcome = 'delivered' | 'retrying' | 'failed'

/** Bounds on an attempt's time, as ISO 8601 strings in UTC. */
export interface TimeRange {
  gte?: string
  gt?: string
  lte?: string
  lt?: string
}

export interface AttemptLogQuery {
  /** Undefined: every tenant (the admin key). An empty list matches nothing, as does every other empty list. */
  tenantIds?: string[]
  eventIds?: string[]
  destinationIds?: string[]
  topics?: string[]
  outcomes?: AttemptOutcome[]
  time?: TimeRange
  dir: 'asc' | 'desc'
  after?: LogPosition
  limit: number
}

export interface DeliveryLogQuery {
  tenantId: string
  destinationId?: string
  eventId?: string
  /** Undefined: attempts made and attempts scheduled alike. */
  status?: AttemptOutcome | 'pending'
  /** Newest first. */
  after?: LogPosition
  limit: number
}

/** The next automatic attempt of a delivery, scheduled and not yet made. */
export interface ScheduledAttempt {
  delivery_seq: number
  event_id: string
  webhook_id: string
  workspace_id: string
  event_type: string
  attempt_number: number
  next_attempt_at: string
}

export type DeliveryLogEntry =
  { kind: 'attempt'; attempt: DeliveryAttempt } | { kind: 'scheduled'; scheduled: ScheduledAttempt }

/** What a delivery listing needs to know of a destination (webhook), deleted ones included. */
export interface DestinationRef {
  webhook_id: string
  workspace_id: string
  event_types: string[]
  enabled: boolean
  deleted: boolean
}

export function attemptPosition(attempt: DeliveryAttempt): LogPosition {
  return { time: attempt.attempted_at, seq: attempt.seq, scheduled: false }
}

export function scheduledPosition(scheduled: ScheduledAttempt): LogPosition {
  return { time: scheduled.next_attempt_at, seq: scheduled.delivery_seq, scheduled: true }
}
