import { hash } from 'node:crypto'
import type { ActionDevice } from '../app/store.js'
import type { AttemptRecord } from '../domain/attempt.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../domain/delivery.js'
import type { CustomMetadata, DeviceRecord } from '../domain/device.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../domain/webhook-delivery.js'
import type { Webhook, WebhookDisabledReason } from '../domain/webhook.js'

/**
 * How a row of each table becomes a domain object, for every engine: the same columns, in the same order, give the
 * same objects key for key, so that both stores answer byte for byte alike. The engines differ only in booleans,
 * which SQLite returns as 0/1 and PostgreSQL as false/true (`Flag`).
 */

export type Flag = number | boolean

export function flag(value: Flag): boolean {
  return value === true || value === 1
}

export function optionalFlag(value: Flag | null): boolean | null {
  return value === null ? null : flag(value)
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T)
}

// Action attempts.

export const ATTEMPT_COLUMN_NAMES = [
  'seq',
  'action_attempt_id',
  'workspace_id',
  'device_id',
  'action_type',
  'status',
  'result',
  'error',
  'created_at',
  'updated_at',
  'sent_at',
  'accepted_at',
  'completed_at',
  'deadline_at',
  'idempotency_key',
  'request_hash',
] as const satisfies ReadonlyArray<keyof AttemptRow>

export const ATTEMPT_COLUMNS = ATTEMPT_COLUMN_NAMES.join(', ')

export interface AttemptRow extends Omit<AttemptRecord, 'action_type' | 'status' | 'result' | 'error'> {
  seq: number
  action_type: string
  status: string
  result: string | null
  error: string | null
}

/**
 * A row of ATTEMPT_COLUMNS read as an array of its values, in that order (better-sqlite3's `raw` mode), named. An
 * engine that names each row's columns itself builds every row through its slow generic path: for the rows a lock
 * command reads in its write jobs that was a twentieth of latchkey's CPU (docs/performance.md#rows-as-arrays).
 */
export function attemptRowOf(values: readonly unknown[]): AttemptRow {
  return {
    seq: values[0] as number,
    action_attempt_id: values[1] as string,
    workspace_id: values[2] as string,
    device_id: values[3] as string,
    action_type: values[4] as string,
    status: values[5] as string,
    result: values[6] as string | null,
    error: values[7] as string | null,
    created_at: values[8] as string,
    updated_at: values[9] as string,
    sent_at: values[10] as string | null,
    accepted_at: values[11] as string | null,
    completed_at: values[12] as string | null,
    deadline_at: values[13] as string,
    idempotency_key: values[14] as string | null,
    request_hash: values[15] as string | null,
  }
}

export function attemptFromRow(row: AttemptRow): AttemptRecord {
  return {
    action_attempt_id: row.action_attempt_id,
    action_type: row.action_type as AttemptRecord['action_type'],
    status: row.status as AttemptRecord['status'],
    result: parseJson<AttemptRecord['result']>(row.result),
    error: parseJson<AttemptRecord['error']>(row.error),
    device_id: row.device_id,
    workspace_id: row.workspace_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    sent_at: row.sent_at,
    accepted_at: row.accepted_at,
    completed_at: row.completed_at,
    deadline_at: row.deadline_at,
    idempotency_key: row.idempotency_key,
    request_hash: row.request_hash,
  }
}

// Devices.

export const DEVICE_COLUMN_NAMES = [
  'seq',
  'device_id',
  'workspace_id',
  'display_name',
  'nickname',
  'custom_metadata',
  'can_remotely_lock',
  'can_remotely_unlock',
  'created_at',
  'online',
  'locked',
  'door_open',
  'jammed',
  'battery_level',
  'firmware_version',
  'last_seen_at',
] as const satisfies ReadonlyArray<keyof DeviceRow>

export const DEVICE_COLUMNS = DEVICE_COLUMN_NAMES.join(', ')

export interface DeviceRow {
  seq: number
  device_id: string
  workspace_id: string
  display_name: string
  nickname: string | null
  custom_metadata: string
  can_remotely_lock: Flag
  can_remotely_unlock: Flag
  created_at: string
  online: Flag
  locked: Flag | null
  door_open: Flag | null
  jammed: Flag | null
  battery_level: number | null
  firmware_version: string | null
  last_seen_at: string | null
}

/** A row of DEVICE_COLUMNS read as an array of its values, in that order, named (see attemptRowOf). */
export function deviceRowOf(values: readonly unknown[]): DeviceRow {
  return {
    seq: values[0] as number,
    device_id: values[1] as string,
    workspace_id: values[2] as string,
    display_name: values[3] as string,
    nickname: values[4] as string | null,
    custom_metadata: values[5] as string,
    can_remotely_lock: values[6] as Flag,
    can_remotely_unlock: values[7] as Flag,
    created_at: values[8] as string,
    online: values[9] as Flag,
    locked: values[10] as Flag | null,
    door_open: values[11] as Flag | null,
    jammed: values[12] as Flag | null,
    battery_level: values[13] as number | null,
    firmware_version: values[14] as string | null,
    last_seen_at: values[15] as string | null,
  }
}

export function deviceFromRow(row: DeviceRow): DeviceRecord {
  return {
    device_id: row.device_id,
    workspace_id: row.workspace_id,
    display_name: row.display_name,
    nickname: row.nickname,
    custom_metadata: JSON.parse(row.custom_metadata) as CustomMetadata,
    created_at: row.created_at,
    can_remotely_lock: flag(row.can_remotely_lock),
    can_remotely_unlock: flag(row.can_remotely_unlock),
    props: {
      online: flag(row.online),
      locked: optionalFlag(row.locked),
      door_open: optionalFlag(row.door_open),
      jammed: optionalFlag(row.jammed),
      battery_level: row.battery_level,
      firmware_version: row.firmware_version,
      last_seen_at: row.last_seen_at,
    },
  }
}

/** What a lock or unlock request needs of its device (`DeviceStore.forAction`). */
export const ACTION_DEVICE_COLUMNS = 'device_id, workspace_id, can_remotely_lock, can_remotely_unlock, online'

export interface ActionDeviceRow {
  device_id: string
  workspace_id: string
  can_remotely_lock: Flag
  can_remotely_unlock: Flag
  online: Flag
}

export function actionDeviceFromRow(row: ActionDeviceRow): ActionDevice {
  return {
    device_id: row.device_id,
    workspace_id: row.workspace_id,
    can_remotely_lock: flag(row.can_remotely_lock),
    can_remotely_unlock: flag(row.can_remotely_unlock),
    online: flag(row.online),
  }
}

// Webhooks.

export const WEBHOOK_COLUMNS = `webhook_id, workspace_id, url, event_types, secret, previous_secret,
  previous_secret_expires_at, enabled, disabled_reason, disabled_at, consecutive_failures, created_at, updated_at`

export interface WebhookRow extends Omit<Webhook, 'event_types' | 'enabled' | 'disabled_reason'> {
  event_types: string
  enabled: Flag
  disabled_reason: string | null
}

/** What matching an event needs, cached per workspace by each store. */
export interface WebhookMatch {
  webhook_id: string
  event_types: string[]
  enabled: boolean
}

export function webhookFromRow(row: WebhookRow): Webhook {
  return {
    ...row,
    event_types: JSON.parse(row.event_types) as string[],
    enabled: flag(row.enabled),
    disabled_reason: row.disabled_reason as WebhookDisabledReason | null,
  }
}

// Deliveries and their attempts.

export const DELIVERY_REF_COLUMNS = 'seq, webhook_id, status, held, next_attempt_at'
export const DELIVERY_COLUMNS = `${DELIVERY_REF_COLUMNS}, event_id, workspace_id, event_type, attempt_count,
  retries_scheduled, last_attempt_at, last_evidence_id, created_at, updated_at`
export const DELIVERY_ATTEMPT_COLUMNS = `seq, attempt_id, delivery_seq, event_id, webhook_id, workspace_id, event_type,
  attempt_number, manual, status, attempted_at, duration_ms, response_code, response_headers, response_body,
  error_message, signature, will_retry, evidence_id`
/** A delivery with its event's body and its webhook, for one attempt. */
export const SELECT_DELIVERY_PLAN = `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id, e.body,
    w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.enabled
  FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`
/** A delivery with what the decision after an attempt needs of its webhook (`DeliveryStateRow`). */
export const SELECT_DELIVERY_STATE = `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id,
    d.workspace_id, d.event_type, d.attempt_count, d.retries_scheduled, d.last_attempt_at, d.last_evidence_id,
    d.created_at, d.updated_at, w.enabled AS webhook_enabled, w.deleted_at IS NOT NULL AS webhook_deleted,
    w.consecutive_failures
  FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`

export interface DeliveryRefRow {
  seq: number
  webhook_id: string
  status: string
  held: Flag
  next_attempt_at: string | null
}

export interface DeliveryPlanRow extends DeliveryRefRow {
  event_id: string
  body: string
  url: string
  secret: string
  previous_secret: string | null
  previous_secret_expires_at: string | null
  enabled: Flag
}

export interface DeliveryRow extends DeliveryRefRow {
  event_id: string
  workspace_id: string
  event_type: string
  attempt_count: number
  retries_scheduled: number
  last_attempt_at: string | null
  last_evidence_id: string | null
  created_at: string
  updated_at: string
}

/** A delivery with what the decision after an attempt needs of its webhook. */
export interface DeliveryStateRow extends DeliveryRow {
  webhook_enabled: Flag
  webhook_deleted: Flag
  consecutive_failures: number
}

export type DeliveryAttemptRow = Omit<DeliveryAttempt, 'manual' | 'will_retry' | 'response_headers'> & {
  manual: Flag
  will_retry: Flag
  response_headers: string | null
}

export function deliveryRefFromRow(row: DeliveryRefRow): DeliveryRef {
  return {
    seq: row.seq,
    webhook_id: row.webhook_id,
    status: row.status as DeliveryStatus,
    held: flag(row.held),
    next_attempt_at: row.next_attempt_at,
  }
}

export function deliveryPlanFromRow(row: DeliveryPlanRow): DeliveryPlan {
  const { url, secret, previous_secret, previous_secret_expires_at, enabled, event_id, body } = row
  return {
    ...deliveryRefFromRow(row),
    event_id,
    body,
    webhook: { url, secret, previous_secret, previous_secret_expires_at, enabled: flag(enabled) },
  }
}

export function deliveryFromRow(row: DeliveryRow): DeliveryRecord {
  const { retries_scheduled: _r, last_evidence_id: _e, ...rest } = row
  return { ...rest, status: row.status as DeliveryStatus, held: flag(row.held) }
}

export function deliveryAttemptFromRow(row: DeliveryAttemptRow): DeliveryAttempt {
  return {
    ...row,
    manual: flag(row.manual),
    will_retry: flag(row.will_retry),
    response_headers: parseJson<Record<string, string | string[]>>(row.response_headers),
  }
}

export function deliveryContext(row: DeliveryStateRow, manual: boolean): DeliveryContext {
  return {
    status: row.status as DeliveryStatus,
    held: flag(row.held),
    nextAttemptAtMs: row.next_attempt_at === null ? null : Date.parse(row.next_attempt_at),
    retriesScheduled: row.retries_scheduled,
    webhookEnabled: flag(row.webhook_enabled),
    webhookDeleted: flag(row.webhook_deleted),
    consecutiveFailures: row.consecutive_failures,
    manual,
  }
}

/** The evidence chain of docs/deliveries.md: each attempt's hash covers the previous one of the same delivery. */
export function evidenceId(
  previous: string | null,
  attemptId: string,
  signature: string,
  code: number | null,
  attemptedAt: string,
): string {
  // One-shot: no Hash object per attempt (a fan-out makes thousands a second).
  return hash('sha256', `${previous ?? ''}\n${attemptId}\n${signature}\n${code ?? ''}\n${attemptedAt}`, 'hex')
}

/** Attempt ids `dlv_` + time + counter + randomness: they sort by insertion, whichever instance made them. */
export function deliveryAttemptIds(newId: () => string): (attemptedAt: string) => string {
  let counter = 0
  return (at) => {
    counter = (counter + 1) % 0x1000000
    const time = Date.parse(at).toString(16).padStart(12, '0')
    return `dlv_${time}${counter.toString(16).padStart(6, '0')}${newId().replaceAll('-', '').slice(0, 14)}`
  }
}

/** The attempt a delivery is about to record (its `seq` is the store's to set once inserted). */
export function newDeliveryAttempt(
  row: DeliveryRow,
  input: AttemptInput,
  decision: AttemptDecision,
  attemptId: string,
): DeliveryAttempt {
  return {
    delivery_seq: input.delivery_seq,
    attempted_at: input.attempted_at,
    duration_ms: input.duration_ms,
    response_code: input.response_code,
    response_headers: input.response_headers,
    response_body: input.response_body,
    error_message: input.error_message,
    signature: input.signature,
    manual: input.manual,
    seq: 0,
    attempt_id: attemptId,
    event_id: row.event_id,
    webhook_id: row.webhook_id,
    workspace_id: row.workspace_id,
    event_type: row.event_type,
    attempt_number: row.attempt_count + 1,
    status: decision.status,
    will_retry: decision.willRetry,
    evidence_id: evidenceId(row.last_evidence_id, attemptId, input.signature, input.response_code, input.attempted_at),
  }
}
