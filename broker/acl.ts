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

/*
 * External brokers (docs/scale-out.md). The embedded broker above checks each packet through canPublish and
 * canSubscribe; an external broker is given the same rules either as literal lists (mosquitto dynamic security, the
 * EMQX authenticator's `acl`) or through HTTP callbacks that call the functions below.
 */

/** The exact topics one device may use, as literal topic names (no wildcards). */
export interface DeviceAcl {
  publish: string[]
  subscribe: string[]
}

export function deviceAcl(deviceId: string): DeviceAcl {
  return {
    publish: DEVICE_TO_SERVER.map((kind) => deviceTopic(deviceId, kind)),
    subscribe: [deviceTopic(deviceId, 'commands')],
  }
}

/** What the service needs: publish every device's commands, subscribe the fleet's uplink filters. */
export interface ServiceAcl {
  /** A topic filter (`+` for the device id). */
  publish: string
  subscribe: string[]
}

export function serviceAcl(): ServiceAcl {
  return { publish: `${TOPIC_ROOT}/+/commands`, subscribe: [...SERVICE_SUBSCRIPTIONS] }
}

const SHARE_PREFIX = '$share/'

/**
 * Splits a shared-subscription filter `$share/<group>/<filter>`. A filter without the prefix comes back with no
 * group; a malformed shared filter (empty or wildcard group, empty filter) comes back undefined.
 */
export function parseSharedFilter(topic: string): { group: string | undefined; filter: string } | undefined {
  if (!topic.startsWith(SHARE_PREFIX)) return { group: undefined, filter: topic }
  const rest = topic.slice(SHARE_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return undefined
  const group = rest.slice(0, slash)
  const filter = rest.slice(slash + 1)
  if (hasWildcard(group) || filter === '') return undefined
  return { group, filter }
}

/**
 * Subscribe check for brokers that pass shared filters through (mosquitto checks the whole `$share/<group>/…`
 * string): the service may take its uplink filters shared or not; a device may not use shared subscriptions.
 */
export function canSubscribeFilter(principal: Principal, topic: string): Refusal | null {
  const shared = parseSharedFilter(topic)
  if (!shared) return 'not_allowed'
  if (shared.group === undefined) return canSubscribe(principal, topic)
  if (principal.kind !== 'service') return 'not_allowed'
  return canSubscribe(principal, shared.filter)
}

/** Whether a message on a concrete topic may be delivered to the principal: a device's own commands, the uplinks. */
export function canReceive(principal: Principal, topic: string): Refusal | null {
  if (hasWildcard(topic)) return 'wildcard'
  const parsed = parseDeviceTopic(topic)
  if (!parsed) return 'not_allowed'
  if (principal.kind === 'service') return DEVICE_PUBLISHES.has(parsed.kind) ? null : 'not_allowed'
  if (parsed.deviceId !== principal.deviceId) return 'foreign_topic'
  return parsed.kind === 'commands' ? null : 'not_allowed'
}
