import type { DeviceEventType, DeviceState } from '../../devices/index.js'
import type { EventDraft } from './events.js'

export type CustomMetadata = Record<string, string | boolean>

/** Live properties of a lock, as last reported by it (docs/api.md#the-device-object). */
export interface DeviceProps {
  online: boolean
  locked: boolean | null
  door_open: boolean | null
  jammed: boolean | null
  battery_level: number | null
  firmware_version: string | null
  last_seen_at: string | null
}

export interface DeviceRecord {
  device_id: string
  workspace_id: string
  display_name: string
  nickname: string | null
  custom_metadata: CustomMetadata
  created_at: string
  can_remotely_lock: boolean
  can_remotely_unlock: boolean
  props: DeviceProps
}

export const LOW_BATTERY_THRESHOLD = 0.2

/** `last_seen_at` alone is rewritten at most this often, so a chatty device does not cost a write per message. */
export const LAST_SEEN_RESOLUTION_MS = 1000

/** Whether new properties differ enough from the stored ones to be written. */
export function changesSomething(before: DeviceProps, after: DeviceProps): boolean {
  for (const key of Object.keys(after) as Array<keyof DeviceProps>) {
    if (key !== 'last_seen_at' && before[key] !== after[key]) return true
  }
  if (after.last_seen_at === null || before.last_seen_at === null) return after.last_seen_at !== before.last_seen_at
  return Date.parse(after.last_seen_at) - Date.parse(before.last_seen_at) >= LAST_SEEN_RESOLUTION_MS
}

export function initialProps(): DeviceProps {
  return {
    online: false,
    locked: null,
    door_open: null,
    jammed: null,
    battery_level: null,
    firmware_version: null,
    last_seen_at: null,
  }
}

export interface DeviceChange {
  patch: Partial<DeviceProps>
  events: EventDraft[]
}

function deviceEvent(
  device: DeviceRecord,
  event_type: EventDraft['event_type'],
  occurred_at: string,
  extra: Partial<EventDraft> = {},
): EventDraft {
  return { event_type, workspace_id: device.workspace_id, device_id: device.device_id, occurred_at, ...extra }
}

/** A `status` message: online/offline transitions emit device.connected / device.disconnected. */
export function applyStatus(device: DeviceRecord, online: boolean, at: string): DeviceChange {
  const patch: Partial<DeviceProps> = { online, last_seen_at: at }
  if (device.props.online === online) return { patch, events: [] }
  const events = online
    ? [deviceEvent(device, 'device.connected', at)]
    : [deviceEvent(device, 'device.disconnected', at, { error_code: 'device_disconnected' })]
  return { patch, events }
}

/** A `state` message (or the state carried by an ack). Crossing below 20 % battery emits device.low_battery. */
export function applyState(device: DeviceRecord, state: DeviceState, at: string): DeviceChange {
  const patch: Partial<DeviceProps> = { locked: state.locked, last_seen_at: at }
  if (state.door_open !== undefined) patch.door_open = state.door_open
  if (state.jammed !== undefined) patch.jammed = state.jammed
  if (state.firmware_version !== undefined) patch.firmware_version = state.firmware_version
  const events: EventDraft[] = []
  if (state.battery_level !== undefined) {
    patch.battery_level = state.battery_level
    const before = device.props.battery_level
    if (state.battery_level < LOW_BATTERY_THRESHOLD && (before === null || before >= LOW_BATTERY_THRESHOLD)) {
      events.push(deviceEvent(device, 'device.low_battery', at, { battery_level: state.battery_level }))
    }
  }
  return { patch, events }
}

/** An `events` message: the device's own account of something that happened at the door. */
export function applyDeviceEvent(
  device: DeviceRecord,
  event: { type: DeviceEventType; method?: string | undefined; occurred_at: string },
  at: string,
): DeviceChange {
  const patch: Partial<DeviceProps> = { last_seen_at: at }
  const extra: Partial<EventDraft> = { method: event.method ?? 'unknown' }
  if (event.type === 'lock.locked') patch.locked = true
  if (event.type === 'lock.unlocked') patch.locked = false
  if (event.type === 'device.tampered') delete extra.method
  return { patch, events: [deviceEvent(device, event.type, event.occurred_at, extra)] }
}

export function batteryStatus(level: number | null): 'critical' | 'low' | 'good' | 'full' | null {
  if (level === null) return null
  if (level < 0.05) return 'critical'
  if (level < LOW_BATTERY_THRESHOLD) return 'low'
  if (level < 0.95) return 'good'
  return 'full'
}
