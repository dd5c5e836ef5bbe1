import { LatchkeyError } from '../domain/errors.js'
import type { DeliveryAttempt, LogPosition, ScheduledAttempt } from './store.js'

/**
 * Opaque cursors of the delivery APIs: a keyset position (time, seq, kind), base64url JSON so clients cannot lean on
 * its form. A cursor says where a page starts, not what it filters: the filters come with every request.
 */

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

export function encodeCursor(position: LogPosition): string {
  return Buffer.from(JSON.stringify({ t: position.time, s: position.seq, k: position.scheduled ? 1 : 0 })).toString(
    'base64url',
  )
}

/** Throws `invalid_input` (no validation details: a 400, not a field error) for anything this server did not issue. */
export function decodeCursor(cursor: string): LogPosition {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  const v = value as { t?: unknown; s?: unknown; k?: unknown } | undefined
  if (typeof v?.t === 'string' && ISO.test(v.t) && Number.isSafeInteger(v.s) && (v.k === 0 || v.k === 1)) {
    return { time: v.t, seq: v.s as number, scheduled: v.k === 1 }
  }
  throw new LatchkeyError('invalid_input', 'invalid cursor')
}

export function attemptPosition(attempt: DeliveryAttempt): LogPosition {
  return { time: attempt.attempted_at, seq: attempt.seq, scheduled: false }
}

export function scheduledPosition(scheduled: ScheduledAttempt): LogPosition {
  return { time: scheduled.next_attempt_at, seq: scheduled.delivery_seq, scheduled: true }
}
