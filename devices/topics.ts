/**
 * Topic layout of the device contract (docs/mqtt.md#topics): `latchkey/v1/devices/{device_id}/{kind}`.
 * The orchestrator, the broker's ACL and the simulator all build and parse topics here.
 */
export const TOPIC_ROOT = 'latchkey/v1/devices'

export const DEVICE_TO_SERVER = ['acks', 'state', 'status', 'events'] as const
export const SERVER_TO_DEVICE = ['commands'] as const

export type DeviceTopicKind = (typeof DEVICE_TO_SERVER)[number]
export type TopicKind = DeviceTopicKind | (typeof SERVER_TO_DEVICE)[number]

export function deviceTopicRoot(deviceId: string): string {
  return `${TOPIC_ROOT}/${deviceId}/`
}

export function deviceTopic(deviceId: string, kind: TopicKind): string {
  return `${TOPIC_ROOT}/${deviceId}/${kind}`
}

/** Subscription filters the orchestrator uses to follow every device. */
export function fleetSubscriptions(): string[] {
  return DEVICE_TO_SERVER.map((kind) => `${TOPIC_ROOT}/+/${kind}`)
}

export interface ParsedTopic {
  deviceId: string
  kind: TopicKind
}

const KINDS: ReadonlySet<string> = new Set<string>([...DEVICE_TO_SERVER, ...SERVER_TO_DEVICE])

/** Parses a concrete topic; returns undefined for anything outside the contract. */
export function parseDeviceTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/')
  if (parts.length !== 5) return undefined
  const [a, b, c, deviceId, kind] = parts
  if (`${a}/${b}/${c}` !== TOPIC_ROOT || !deviceId || !kind || !KINDS.has(kind)) return undefined
  return { deviceId, kind: kind as TopicKind }
}
