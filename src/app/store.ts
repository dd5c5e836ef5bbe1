import type { AttemptRecord, HistoryEntry, Transition } from '../domain/attempt.js'
import type { CustomMetadata, DeviceChange, DeviceProps, DeviceRecord } from '../domain/device.js'
import type { EventDraft, EventType, LatchkeyEvent } from '../domain/events.js'

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
  close(): Promise<void>
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
  delete(workspaceId: string, deviceId: string, event: EventDraft, settle: (attempt: AttemptRecord) => Transition): Promise<AttemptRecord[] | undefined>
  secretHash(deviceId: string): Promise<string | undefined>
  setSecretHash(workspaceId: string, deviceId: string, secretHash: string): Promise<boolean>
  /** Applies a device-reported change; returns the device as it is afterwards, or undefined if unknown. */
  change(deviceId: string, decide: (device: DeviceRecord) => DeviceChange, dedupeKey?: string): Promise<DeviceRecord | undefined>
  /** At start-up nobody is connected yet (SPEC §4). */
  markAllOffline(): Promise<void>
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
  transition(attemptId: string, decide: (attempt: AttemptRecord) => Transition, deviceId?: string): Promise<Transition | undefined>
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
