import type { ActionType, AttemptError } from './attempt.js'

export const EVENT_TYPES = [
  'action_attempt.lock_door.succeeded',
  'action_attempt.lock_door.failed',
  'action_attempt.unlock_door.succeeded',
  'action_attempt.unlock_door.failed',
  'lock.locked',
  'lock.unlocked',
  'lock.access_denied',
  'device.connected',
  'device.disconnected',
  'device.low_battery',
  'device.tampered',
  'device.added',
  'device.deleted',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** An event before it gets its id and creation time (those are given when it is committed). */
export interface EventDraft {
  event_type: EventType
  workspace_id: string
  occurred_at: string
  device_id?: string
  action_attempt_id?: string
  action_type?: ActionType
  status?: string
  method?: string
  error_code?: string
  error?: AttemptError
  battery_level?: number
}

/** The event envelope of docs/api.md#events; the webhook body is exactly this JSON. */
export interface LatchkeyEvent extends EventDraft {
  event_id: string
  created_at: string
  event_description: string
}

const DESCRIPTIONS: Record<EventType, string> = {
  'action_attempt.lock_door.succeeded': 'A lock door action attempt succeeded.',
  'action_attempt.lock_door.failed': 'A lock door action attempt failed.',
  'action_attempt.unlock_door.succeeded': 'An unlock door action attempt succeeded.',
  'action_attempt.unlock_door.failed': 'An unlock door action attempt failed.',
  'lock.locked': 'A lock was locked.',
  'lock.unlocked': 'A lock was unlocked.',
  'lock.access_denied': 'The lock denied access to a user after one or more consecutive invalid attempts.',
  'device.connected': 'The status of a device changed from offline to online.',
  'device.disconnected': 'The status of a device changed from online to offline.',
  'device.low_battery': 'The battery level of a device dropped below the low threshold.',
  'device.tampered': 'The device detected that it was tampered with.',
  'device.added': 'A device was added to the workspace.',
  'device.deleted': 'A device was deleted from the workspace.',
}

export function finaliseEvent(draft: EventDraft, event_id: string, created_at: string): LatchkeyEvent {
  return { event_id, ...draft, created_at, event_description: DESCRIPTIONS[draft.event_type] }
}
