import { DEVICE_ERROR_TYPES, type Ack, type DeviceErrorType } from '../../devices/index.js'
import { assertNever } from './assert.js'
import type { EventDraft } from './events.js'

export type ActionType = 'LOCK_DOOR' | 'UNLOCK_DOOR'
export type AttemptStatus = 'pending' | 'success' | 'error'

/** Error types an attempt can settle with (docs/api.md, docs/mqtt.md#error-types). */
export type AttemptErrorType =
  | DeviceErrorType
  | 'device_offline'
  | 'action_attempt_expired'
  | 'device_removed'
  | 'device_error'
  | 'uncategorized_error'

export interface AttemptError {
  type: AttemptErrorType
  message: string
}

/** The action attempt object of docs/api.md: Seam's five fields plus latchkey's timeline. */
export interface ActionAttempt {
  action_attempt_id: string
  action_type: ActionType
  status: AttemptStatus
  result: { was_confirmed_by_device: true } | null
  error: AttemptError | null
  device_id: string
  workspace_id: string
  created_at: string
  updated_at: string
  sent_at: string | null
  accepted_at: string | null
  completed_at: string | null
}

/** What the store keeps beside the public object. */
export interface AttemptRecord extends ActionAttempt {
  deadline_at: string
  idempotency_key: string | null
  request_hash: string | null
}

export type HistoryKind =
  'created' | 'sent' | 'republished' | 'accepted' | 'succeeded' | 'failed' | 'duplicate_ack' | 'late_ack'

export interface HistoryEntry {
  kind: HistoryKind
  at: string
  detail?: Record<string, unknown>
}

/** The result of applying something to an attempt. `changed` false means: record the history entries, touch nothing else. */
export interface Transition {
  attempt: AttemptRecord
  changed: boolean
  settled: boolean
  /** Empty when nothing happened worth recording (e.g. a timer that fired for an attempt already settled). */
  history: HistoryEntry[]
  events: EventDraft[]
  /** The device's `locked` property after a confirmed action (docs/api.md: success updates it). */
  locked?: boolean
}

const ERROR_MESSAGES: Record<AttemptErrorType, string> = {
  lock_jammed: 'The lock is jammed.',
  door_open: 'The door is open; it cannot be locked.',
  low_battery: 'The lock battery is too low to move the bolt.',
  command_expired: 'The lock received the command after it expired.',
  unsupported_action: 'The lock does not support this action.',
  device_busy: 'The lock is busy with another command.',
  device_offline: 'The device is offline.',
  action_attempt_expired: 'The device did not confirm the action before the deadline.',
  device_removed: 'The device was deleted while the action was pending.',
  device_error: 'The device reported an error.',
  uncategorized_error: 'The action failed.',
}

const DEVICE_ERRORS: ReadonlySet<string> = new Set(DEVICE_ERROR_TYPES)

/** A device-reported error as an attempt error: known types kept, others `device_error` (docs/mqtt.md#error-types). */
export function deviceError(reported: Ack['error']): AttemptError {
  if (!reported) return { type: 'device_error', message: ERROR_MESSAGES.device_error }
  const message = reported.message || ERROR_MESSAGES.device_error
  if (DEVICE_ERRORS.has(reported.type)) return { type: reported.type as DeviceErrorType, message }
  return { type: 'device_error', message }
}

export function attemptError(type: AttemptErrorType, message = ERROR_MESSAGES[type]): AttemptError {
  return { type, message }
}

export interface NewAttempt {
  action_attempt_id: string
  action_type: ActionType
  device_id: string
  workspace_id: string
  now: string
  deadline_at: string
  idempotency_key?: string | null
  request_hash?: string | null
}

/** A new attempt; a lock that is offline at creation settles at once as `device_offline` (docs/api.md). */
export function createAttempt(
  input: NewAttempt,
  deviceOnline: boolean,
): { attempt: AttemptRecord; history: HistoryEntry[]; events: EventDraft[] } {
  const pending: AttemptRecord = {
    action_attempt_id: input.action_attempt_id,
    action_type: input.action_type,
    status: 'pending',
    result: null,
    error: null,
    device_id: input.device_id,
    workspace_id: input.workspace_id,
    created_at: input.now,
    updated_at: input.now,
    sent_at: null,
    accepted_at: null,
    completed_at: null,
    deadline_at: input.deadline_at,
    idempotency_key: input.idempotency_key ?? null,
    request_hash: input.request_hash ?? null,
  }
  const created: HistoryEntry = { kind: 'created', at: input.now }
  if (deviceOnline) return { attempt: pending, history: [created], events: [] }
  const settled = settle(pending, attemptError('device_offline'), input.now)
  return { attempt: settled.attempt, history: [created, ...settled.history], events: settled.events }
}

function unchanged(attempt: AttemptRecord, entry?: HistoryEntry): Transition {
  return { attempt, changed: false, settled: false, history: entry ? [entry] : [], events: [] }
}

/**
 * The broker acknowledged the command (PUBACK): record `sent_at` once, with its `sent` entry. When the lock's ack
 * got there first, that ack already recorded both (see `applyAck`), and there is nothing left to record.
 */
export function markSent(attempt: AttemptRecord, at: string): Transition {
  if (attempt.sent_at !== null) return unchanged(attempt)
  if (attempt.status !== 'pending') return unchanged(attempt, { kind: 'sent', at })
  return {
    attempt: { ...attempt, sent_at: at, updated_at: at },
    changed: true,
    settled: false,
    history: [{ kind: 'sent', at }],
    events: [],
  }
}

/**
 * After a restart, the command of a pending attempt goes out again when its lock announces itself. The `republished`
 * entry is recorded before that publish, so it precedes whatever the lock answers to it; an attempt settled
 * meanwhile is not published again, and nothing is recorded.
 */
export function markRepublished(attempt: AttemptRecord, at: string): Transition {
  if (attempt.status !== 'pending') return unchanged(attempt)
  return {
    attempt: { ...attempt, updated_at: at },
    changed: true,
    settled: false,
    history: [{ kind: 'republished', at }],
    events: [],
  }
}

/**
 * A device ack. The first settling ack wins; an ack for a settled attempt is recorded as duplicate (or late, when
 * the attempt had expired) and changes nothing; an ack after the deadline settles the attempt as expired.
 */
export function applyAck(attempt: AttemptRecord, ack: Ack, at: string): Transition {
  const detail = { status: ack.status, ...(ack.error ? { error: ack.error } : {}) }
  if (attempt.status !== 'pending') {
    const late = attempt.error?.type === 'action_attempt_expired'
    return unchanged(attempt, { kind: late ? 'late_ack' : 'duplicate_ack', at, detail })
  }
  if (at > attempt.deadline_at) {
    const expired = settle(attempt, attemptError('action_attempt_expired'), at)
    // The ack came too late to count: the attempt expires, and the ack is on record as late.
    return { ...expired, history: [{ kind: 'late_ack', at, detail }, ...expired.history] }
  }
  // An ack proves the lock got the command. When it arrives before the broker's PUBACK was recorded, `sent_at` and
  // its `sent` entry are written here, in the ack's transaction: the field and the history never disagree, even if
  // the process dies before the PUBACK's own write (docs/api.md#action-attempts).
  const sent: HistoryEntry[] = attempt.sent_at === null ? [{ kind: 'sent', at }] : []
  const delivered = { ...attempt, sent_at: attempt.sent_at ?? at }
  switch (ack.status) {
    case 'accepted':
      if (attempt.accepted_at !== null) return unchanged(attempt, { kind: 'duplicate_ack', at, detail })
      return {
        attempt: { ...delivered, accepted_at: at, updated_at: at },
        changed: true,
        settled: false,
        history: [...sent, { kind: 'accepted', at }],
        events: [],
      }
    case 'success':
    case 'error': {
      const outcome = settle(delivered, ack.status === 'success' ? null : deviceError(ack.error), at)
      return { ...outcome, history: [...sent, ...outcome.history] }
    }
    default:
      return assertNever(ack.status)
  }
}

/** The deadline passed: a still-pending attempt settles as `action_attempt_expired`. */
export function expire(attempt: AttemptRecord, at: string): Transition {
  if (attempt.status !== 'pending' || at < attempt.deadline_at) return unchanged(attempt)
  return settle(attempt, attemptError('action_attempt_expired'), at)
}

/** The device was deleted while the attempt was pending. */
export function removeDevice(attempt: AttemptRecord, at: string): Transition {
  if (attempt.status !== 'pending') return unchanged(attempt)
  return settle(attempt, attemptError('device_removed'), at)
}

function settle(attempt: AttemptRecord, error: AttemptError | null, at: string): Transition {
  const success = error === null
  const settled: AttemptRecord = {
    ...attempt,
    status: success ? 'success' : 'error',
    result: success ? { was_confirmed_by_device: true } : null,
    error,
    updated_at: at,
    completed_at: at,
  }
  const verb = attempt.action_type === 'LOCK_DOOR' ? 'lock_door' : 'unlock_door'
  const base = {
    workspace_id: attempt.workspace_id,
    device_id: attempt.device_id,
    action_attempt_id: attempt.action_attempt_id,
    occurred_at: at,
  }
  const events: EventDraft[] = [
    {
      ...base,
      event_type: `action_attempt.${verb}.${success ? 'succeeded' : 'failed'}`,
      action_type: attempt.action_type,
      status: settled.status,
      ...(error ? { error, error_code: error.type } : {}),
    },
  ]
  const locked = attempt.action_type === 'LOCK_DOOR'
  if (success) events.push({ ...base, event_type: locked ? 'lock.locked' : 'lock.unlocked', method: 'remote' })
  return {
    attempt: settled,
    changed: true,
    settled: true,
    history: [{ kind: success ? 'succeeded' : 'failed', at, ...(error ? { detail: { error } } : {}) }],
    events,
    ...(success ? { locked } : {}),
  }
}

/** The public object of docs/api.md, without the store's bookkeeping. */
export function toPublicAttempt(record: AttemptRecord): ActionAttempt {
  const { deadline_at: _d, idempotency_key: _k, request_hash: _h, ...rest } = record
  return rest
}
