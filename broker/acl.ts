import { DEVICE_TO_SERVER, TOPIC_ROOT, deviceTopic, parseDeviceTopic } from '../devices/index.js'

/** Who a connected MQTT client is, once authenticated (docs/mqtt.md#access-control). */
export type Principal = { kind: 'service' } | { kind: 'device'; deviceId: string }

export type Refusal =
  | 'anonymous'
  | 'client_id_mismatch'
  | 'bad_credentials'
  | 'foreign_topic'
  | 'wildcard'
  | 'not_allowed'
  // Refused before the credentials are checked: the client address used up its failed logins.
  | 'throttled'
  // A device on the plain port while it is reserved to the orchestrator.
  | 'plaintext_disabled'
  // Closed by the frame guard (docs/mqtt.md, "Limits").
  | 'connect_too_large'
  | 'not_connect'
  | 'packet_too_large'
  | 'malformed_length'

const DEVICE_PUBLISHES: ReadonlySet<string> = new Set(DEVICE_TO_SERVER)
const SERVICE_SUBSCRIPTIONS: ReadonlySet<string> = new Set(DEVICE_TO_SERVER.map((kind) => `${TOPIC_ROOT}/+/${kind}`))

function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#')
}

/** A device may publish only its own acks/state/status/events; the service only commands. */
export function canPublish(principal: Principal, topic: string): Refusal | null {
  if (hasWildcard(topic)) return 'wildcard'
  const parsed = parseDeviceTopic(topic)
  if (!parsed) return 'not_allowed'
  if (principal.kind === 'service') return parsed.kind === 'commands' ? null : 'not_allowed'
  if (parsed.deviceId !== principal.deviceId) return 'foreign_topic'
  return DEVICE_PUBLISHES.has(parsed.kind) ? null : 'not_allowed'
}

/** A device may subscribe only to its own commands, without wildcards; the service to the fleet's uplink topics. */
export function canSubscribe(principal: Principal, topic: string): Refusal | null {
  if (principal.kind === 'service') return SERVICE_SUBSCRIPTIONS.has(topic) ? null : 'not_allowed'
  if (hasWildcard(topic)) return 'wildcard'
  if (topic === deviceTopic(principal.deviceId, 'commands')) return null
  return parseDeviceTopic(topic) ? 'foreign_topic' : 'not_allowed'
}
