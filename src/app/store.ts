import type { AttemptRecord, HistoryEntry, Transition } from '../domain/attempt.js'
import type {
  AttemptLogQuery,
  DeliveryLogEntry,
  DeliveryLogQuery,
  DestinationRef,
  ScheduledAttempt,
} from '../domain/delivery-log.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../domain/delivery.js'
import type { CustomMetadata, DeviceChange, DeviceRecord } from '../domain/device.js'
import type { EventDraft, LatchkeyEvent } from '../domain/events.js'
import type { Page } from '../domain/page.js'
import type { AttemptListQuery, DeviceListQuery, EventListQuery } from '../domain/queries.js'
import type { AttemptDecision, DeliveryContext } from '../domain/webhook-delivery.js'
import type { Webhook } from '../domain/webhook.js'
import type { ApiKeyRecord, Workspace } from '../domain/workspace.js'

/**
 * What the application needs from storage. Asynchronous on purpose, although SQLite answers synchronously, so that
 * another engine can stand behind it (docs/design.md). Every method that takes a `decide` function loads the current
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
  /** The read side of the delivery log, for the delivery APIs. */
  deliveryLog: DeliveryLogStore
  /** Deletes what is past retention, a bounded batch at a time (docs/operations.md#retention). */
  retention: RetentionStore
  /** True while the store can serve requests (the readiness probe). */
  ready(): boolean
  /**
   * Calls `listener` each time the database answers again after it was lost (a networked store); a store that
   * cannot be lost while the process runs (SQLite) never calls it.
   */
  onRestored(listener: () => void): void
  /**
   * A store shared by several processes (PostgreSQL) calls `listener` with the id of each attempt any of them
   * settles, soon after the commit, at most once per settle and possibly never (a lost notification). Absent on a
   * store only this process writes.
   */
  onAttemptSettled?(listener: (attemptId: string) => void): void
  /**
   * Leases on deliveries, for a store shared by several processes (docs/scale-out.md#deliveries): an automatic
   * attempt is made only by the process holding its delivery's lease. Absent on a store only this process writes.
   */
  deliveryClaims?: DeliveryClaims
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

export interface SettingsStore {
  get(key: string): Promise<string | undefined>
  /** Sets the value unless one is already there; returns the value in force. */
  setIfAbsent(key: string, value: string): Promise<string>
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

export interface DeviceUpdate {
  display_name?: string
  nickname?: string | null
  custom_metadata?: CustomMetadata
  can_remotely_lock?: boolean
  can_remotely_unlock?: boolean
}

/** What a lock or unlock request reads of its device before it creates the attempt. */
export interface ActionDevice {
  device_id: string
  workspace_id: string
  can_remotely_lock: boolean
  can_remotely_unlock: boolean
  online: boolean
}

export interface DeviceStore {
  create(input: NewDevice): Promise<void>
  /**
   * What a lock or unlock request needs of a device, scoped to a workspace; a store may serve it from a cache that
   * every change to these fields invalidates at once (PostgreSQL: docs/scale-out.md#caches). Absent: `get`.
   */
  forAction?(workspaceId: string, deviceId: string): Promise<ActionDevice | undefined>
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
  /** At start-up nobody is connected yet (docs/operations.md#restarts). */
  markAllOffline(): Promise<void>
  /** Devices whose last status message was `online`, in every workspace: a /metrics gauge, read at scrape time. */
  countOnline(): Promise<number>
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
  /**
   * A store shared by several processes: settles through `decide` up to `limit` pending attempts whose deadline is
   * at or before `now`, whichever process created them, skipping rows another transaction holds. The row lock of
   * this transaction is the deadline's claim (docs/scale-out.md#deadlines). Absent where one process owns every
   * attempt and its timers suffice.
   */
  expireDue?(now: string, limit: number, decide: (attempt: AttemptRecord) => Transition): Promise<Transition[]>
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

/** An attempt as committed, with the decision committed alongside it. */
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
 * Delivery leases on a shared database (docs/scale-out.md#deliveries). Times are ISO 8601 from the caller's clock. A
 * lease is live while `lease_until` is after `now`; its holder may take it again, nobody else may.
 */
export interface DeliveryClaims {
  /**
   * Takes (or extends) the leases of the deliveries among `seqs` that are owed, not held and due by `now`, and that
   * no other holder's live lease holds; returns the seqs taken.
   */
  claim(seqs: number[], owner: string, now: string, until: string): Promise<number[]>
  /** Takes the leases of up to `limit` owed, unheld deliveries due by `now` that no live lease holds, soonest first. */
  claimDue(owner: string, now: string, until: string, limit: number): Promise<DeliveryRef[]>
  /** Gives a lease back (the attempt is recorded and the delivery waits for its retry). */
  release(seq: number, owner: string): Promise<void>
  /** Calls `listener` soon after any process commits new deliveries; possibly never (a lost notification). */
  onQueued(listener: () => void): void
}

/** Read side of the delivery log (docs/deliveries.md): keyset pages, never offsets. */
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

/** What `RetentionStore.prune` deletes: rows created before these instants (ISO 8601). */
export interface PruneCutoffs {
  /** Settled attempts (with their history), finished deliveries (with their attempts) and events before this. */
  before: string
  /** Idempotency keys of attempts created before this are freed (their 24 h window is over). */
  keysBefore: string
}

/** Rows deleted (keys freed) by one batch; `more` is true when the batch stopped at its limit, not at the cutoff. */
export interface PruneResult {
  attempts: number
  deliveries: number
  events: number
  idempotencyKeys: number
  more: boolean
}

/**
 * Retention (docs/operations.md#retention). Never deletes a pending attempt, a delivery still owed (pending, held
 * or in flight), nor an event any remaining delivery refers to.
 */
export interface RetentionStore {
  /**
   * One bounded batch: examines at most `limit` rows of each table, oldest first, in one write, and deletes the
   * ones past `cutoffs`. Call again while `more` is true.
   */
  prune(cutoffs: PruneCutoffs, limit: number): Promise<PruneResult>
}
