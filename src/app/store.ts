import type { AttemptRecord, HistoryEntry, Transition } from '../domain/attempt.js'
import type { CustomMetadata, DeviceChange, DeviceProps, DeviceRecord } from '../domain/device.js'
import type { EventDraft, EventType, LatchkeyEvent } from '../domain/events.js'
import type { Webhook } from '../domain/webhook.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../domain/webhook-delivery.js'

/**
 * What the application needs from storage. Asynchronous on purpose, although SQLite answers synchronously, so that
 * another engine can stand behind it (SPEC §1, §12). Every method that takes a `decide` function loads the current
 * row, lets the pure domain decide, and commits the outcome and its events in one transaction (the outbox).
 */
export interface Store {
  settings: SettingsStore
  workspaces: WorkspaceStore
  devices: DeviceStore
  attempts: AttemptStore
  events: EventStore
  webhooks: WebhookStore
  deliveries: DeliveryStore
  close(): Promise<void>
}

export interface WriteOptions {
  /**
   * Commit as soon as the current task ends instead of waiting for the group-commit window. For callers that hold
   * a serialised input until the write commits: mqtt.js reads a client's next message only after the previous one
   * is handled, so every device message would otherwise wait a whole event-loop turn.
   */
  urgent?: boolean
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface SettingsStore {
  get(key: string): Promise<string | undefined>
  /** Sets the value unless one is already there; returns the value in force. */
  setIfAbsent(key: string, value: string): Promise<string>
}

export interface Workspace {
  workspace_id: string
  name: string
  created_at: string
}

export interface ApiKeyRecord {
  api_key_id: string
  workspace_id: string
  name: string | null
  created_at: string
}

export interface WorkspaceStore {
  create(workspace: Workspace): Promise<void>
  get(workspaceId: string): Promise<Workspace | undefined>
  list(): Promise<Workspace[]>
  count(): Promise<number>
  createApiKey(key: ApiKeyRecord, keyHash: string): Promise<void>
  /** The workspace a key hash belongs to. */
  findByKeyHash(keyHash: string): Promise<string | undefined>
  deleteApiKey(workspaceId: string, apiKeyId: string): Promise<boolean>
}

export interface NewDevice {
  device: DeviceRecord
  secretHash: string
  event: EventDraft
}

export interface DeviceListQuery {
  deviceIds?: string[]
  createdBefore?: string
  limit: number
  cursor?: string
}

export interface DeviceUpdate {
  display_name?: string
  nickname?: string | null
  custom_metadata?: CustomMetadata
  can_remotely_lock?: boolean
  can_remotely_unlock?: boolean
}

export interface DeviceStore {
  create(input: NewDevice): Promise<void>
  /** Scoped to a workspace: a foreign id answers exactly as a missing one. */
  get(workspaceId: string, deviceId: string): Promise<DeviceRecord | undefined>
  getById(deviceId: string): Promise<DeviceRecord | undefined>
  list(workspaceId: string, query: DeviceListQuery): Promise<Page<DeviceRecord>>
  update(workspaceId: string, deviceId: string, update: DeviceUpdate): Promise<boolean>
  /**
   * Deletes the device, settles its pending attempts through `settle` and records `event`, in one transaction.
   * Returns the settled attempts, or undefined when there was no such device.
   */
  delete(
    workspaceId: string,
    deviceId: string,
    event: EventDraft,
    settle: (attempt: AttemptRecord) => Transition,
  ): Promise<AttemptRecord[] | undefined>
  secretHash(deviceId: string): Promise<string | undefined>
  setSecretHash(workspaceId: string, deviceId: string, secretHash: string): Promise<boolean>
  /** Applies a device-reported change; returns the device as it is afterwards, or undefined if unknown. */
  change(
    deviceId: string,
    decide: (device: DeviceRecord) => DeviceChange,
    options?: WriteOptions & { dedupeKey?: string },
  ): Promise<DeviceRecord | undefined>
  /** At start-up nobody is connected yet (SPEC §4). */
  markAllOffline(): Promise<void>
  /** Devices whose last status message was `online`, in every workspace: a /metrics gauge, read at scrape time. */
  countOnline(): Promise<number>
}

export type DevicePropsPatch = Partial<DeviceProps>

export interface AttemptListQuery {
  attemptIds?: string[]
  deviceId?: string
  limit: number
  cursor?: string
}

export interface AttemptStore {
  create(attempt: AttemptRecord, history: HistoryEntry[], events: EventDraft[]): Promise<void>
  get(workspaceId: string, attemptId: string): Promise<AttemptRecord | undefined>
  getById(attemptId: string): Promise<AttemptRecord | undefined>
  list(workspaceId: string, query: AttemptListQuery): Promise<Page<AttemptRecord>>
  history(attemptId: string): Promise<HistoryEntry[]>
  findByIdempotencyKey(workspaceId: string, key: string): Promise<AttemptRecord | undefined>
  /** Frees an idempotency key whose 24 h have passed, so it can be used again. */
  releaseIdempotencyKey(workspaceId: string, key: string): Promise<void>
  /**
   * Loads the attempt, applies `decide`, and commits the new attempt, its history entry, its events and any
   * device property change together. `deviceId` restricts the match: an ack names its device.
   */
  transition(
    attemptId: string,
    decide: (attempt: AttemptRecord) => Transition,
    options?: WriteOptions & { deviceId?: string },
  ): Promise<Transition | undefined>
  listPending(): Promise<AttemptRecord[]>
}

export interface EventListQuery {
  since: string
  until?: string
  deviceIds?: string[]
  eventTypes?: EventType[]
  actionAttemptId?: string
  limit: number
  cursor?: string
}

export interface EventStore {
  get(workspaceId: string, eventId: string): Promise<LatchkeyEvent | undefined>
  list(workspaceId: string, query: EventListQuery): Promise<Page<LatchkeyEvent>>
}

export interface WebhookPatch {
  url?: string
  event_types?: string[]
  enabled?: boolean
}

export interface WebhookChange {
  webhook: Webhook
  /** Enabled again: its held deliveries were released, due at once. */
  released: boolean
  /** Disabled: its pending deliveries are now held. */
  held: boolean
}

export interface WebhookStore {
  create(webhook: Webhook): Promise<void>
  /** Scoped to a workspace: a deleted or foreign webhook answers exactly as a missing one. */
  get(workspaceId: string, webhookId: string): Promise<Webhook | undefined>
  list(workspaceId: string): Promise<Webhook[]>
  /** Enabling releases the webhook's held deliveries (due at `at`); disabling holds its pending ones. One transaction. */
  update(workspaceId: string, webhookId: string, patch: WebhookPatch, at: string): Promise<WebhookChange | undefined>
  /** The current secret becomes the previous one, signing alongside until `previousExpiresAt`. */
  rotateSecret(
    workspaceId: string,
    webhookId: string,
    secret: string,
    previousExpiresAt: string,
    at: string,
  ): Promise<Webhook | undefined>
  /** Soft delete: the row stays so the delivery history keeps its destination; pending deliveries are cancelled. */
  delete(workspaceId: string, webhookId: string, at: string): Promise<boolean>
}

/** A delivery (one event × one webhook) as the dispatcher tracks it. */
export interface DeliveryRef {
  seq: number
  webhook_id: string
  status: DeliveryStatus
  held: boolean
  /** When the next automatic attempt is due; null when none is scheduled (delivered, failed, held). */
  next_attempt_at: string | null
}

/** What one HTTP attempt needs, read when it is made. */
export interface DeliveryPlan extends DeliveryRef {
  event_id: string
  /** The event JSON exactly as stored: the request body. */
  body: string
  webhook: Pick<Webhook, 'url' | 'secret' | 'previous_secret' | 'previous_secret_expires_at' | 'enabled'>
}

/** One HTTP attempt as made; the store numbers it and chains its evidence. */
export interface AttemptInput {
  delivery_seq: number
  attempted_at: string
  duration_ms: number
  response_code: number | null
  response_headers: Record<string, string | string[]> | null
  /** The first 64 KiB of the response body. */
  response_body: string | null
  /** Network error, timeout or SSRF refusal. */
  error_message: string | null
  /** The `webhook-signature` header value of the request. */
  signature: string
  manual: boolean
}

export interface DeliveryAttempt extends AttemptInput {
  seq: number
  attempt_id: string
  event_id: string
  webhook_id: string
  workspace_id: string
  event_type: string
  attempt_number: number
  status: 'success' | 'failed'
  will_retry: boolean
  /** SHA-256 chain per delivery: hex(sha256(`${previous ?? ''}\n${attempt_id}\n${signature}\n${code ?? ''}\n${attempted_at}`)). */
  evidence_id: string
}

export interface DeliveryRecord {
  seq: number
  event_id: string
  webhook_id: string
  workspace_id: string
  event_type: string
  status: DeliveryStatus
  held: boolean
  attempt_count: number
  next_attempt_at: string | null
  last_attempt_at: string | null
  created_at: string
  updated_at: string
}

export interface RecordedAttempt {
  attempt: DeliveryAttempt
  decision: AttemptDecision
}

/**
 * The delivery outbox. Rows are written by the event log in the transaction of their event; the dispatcher reads
 * them here and commits each attempt with its consequences (next attempt, hold, disable) in one transaction.
 */
export interface DeliveryStore {
  /** The highest delivery seq committed so far (0 when none). */
  maxSeq(): Promise<number>
  /** Deliveries committed after `afterSeq`, oldest first: the outbox tail. */
  listAfter(afterSeq: number, limit: number): Promise<DeliveryRef[]>
  /** Enabled webhooks: the ones whose pending deliveries are not held. */
  activeWebhooks(): Promise<string[]>
  /**
   * Pending, not held deliveries of one webhook after `afterSeq`, in event order, a page at a time: start-up recovery,
   * and what re-enabling a webhook released.
   */
  listPending(webhookId: string, afterSeq: number, limit: number): Promise<DeliveryRef[]>
  loadForAttempt(seq: number): Promise<DeliveryPlan | undefined>
  /** Loads the delivery, lets `decide` rule, and commits the attempt and the decision together. */
  recordAttempt(
    input: AttemptInput,
    decide: (ctx: DeliveryContext) => AttemptDecision,
  ): Promise<RecordedAttempt | undefined>
  get(eventId: string, webhookId: string): Promise<DeliveryRecord | undefined>
  /** Every attempt of one event to one webhook, in order. */
  attempts(eventId: string, webhookId: string): Promise<DeliveryAttempt[]>
  /**
   * /metrics gauges, read at scrape time: pending deliveries held by a disabled webhook, and the creation time of
   * the oldest pending delivery of an enabled webhook (null when none is owed).
   */
  owedSummary(): Promise<{ held: number; oldestOwedAt: string | null }>
}

/**
 * A row's place in a time-ordered delivery log. A page starts strictly after a position; rows are ordered by
 * (time, seq, scheduled), so a scheduled attempt (the v1 dialect's pending row) follows an attempt with equal time and seq.
 */
export interface LogPosition {
  time: string
  seq: number
  scheduled: boolean
}

/** An attempt's outcome as the v1 dialect names it (SPEC §9); the Outpost dialect's `failed` is retrying or failed. */
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

/** Read side of the delivery log, for the delivery APIs (docs/deliveries.md): keyset pages, never offsets. */
export interface DeliveryLogStore {
  /** Up to `limit` attempts in (time, seq) order of `dir`, after `after`. */
  listAttempts(query: AttemptLogQuery): Promise<DeliveryAttempt[]>
  getAttempt(attemptId: string): Promise<DeliveryAttempt | undefined>
  /** Up to `limit` attempts and scheduled attempts of one tenant, newest first. */
  listDeliveries(query: DeliveryLogQuery): Promise<DeliveryLogEntry[]>
  getScheduled(deliverySeq: number): Promise<ScheduledAttempt | undefined>
  events(eventIds: string[]): Promise<Map<string, LatchkeyEvent>>
  destinations(webhookIds: string[]): Promise<Map<string, DestinationRef>>
}
