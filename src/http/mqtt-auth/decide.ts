import {
  canPublish,
  canReceive,
  canSubscribeFilter,
  deviceAcl,
  serviceAcl,
  type Principal,
  type Refusal,
} from '../../../broker/acl.js'
import type { Metrics } from '../../app/metrics.js'

/**
 * The broker-neutral decisions behind the `/mqtt-auth` callbacks (docs/scale-out.md#http-callbacks): the same
 * password check and the same per-device ACL as the embedded broker, for brokers that ask over HTTP.
 */
export interface MqttAuthDeps {
  /** Shared with the broker (`MQTT_AUTH_SECRET`); every callback must present it. */
  secret: string
  /** The orchestrator's MQTT username (`MQTT_SERVICE_USERNAME`). */
  serviceUsername: string
  /** The embedded broker's password check: SHA-256 of the secret against the stored hash, or the service password. */
  authenticate: (username: string, password: Buffer) => Promise<Principal | undefined>
  /** Whether a device still exists; a deleted device's live session is refused on its next publish or subscribe. */
  deviceExists: (deviceId: string) => Promise<boolean>
  metrics: Metrics
}

export type Decision = { ok: true; principal: Principal } | { ok: false; reason: Refusal }

export function createMqttAuthDecisions(deps: MqttAuthDeps) {
  const refuse = (reason: Refusal): Decision => {
    deps.metrics.inc('mqtt_refusals_total', { reason })
    return { ok: false, reason }
  }

  /**
   * Who an already-connected client is, from what the broker tells a publish/subscribe callback. A device's client
   * id is its username; the service may connect under any client id (one per instance).
   */
  async function principalOf(username: unknown, clientId: unknown): Promise<Decision> {
    if (typeof username !== 'string' || username === '') return refuse('anonymous')
    if (username === deps.serviceUsername) return { ok: true, principal: { kind: 'service' } }
    if (clientId !== username) return refuse('client_id_mismatch')
    if (!(await deps.deviceExists(username))) return refuse('bad_credentials')
    return { ok: true, principal: { kind: 'device', deviceId: username } }
  }

  return {
    principalOf,

    /** A CONNECT: username and password checked as the embedded broker checks them; a device's client id is its id. */
    async login(username: unknown, password: unknown, clientId: unknown): Promise<Decision> {
      if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '')
        return refuse('anonymous')
      if (username !== deps.serviceUsername && clientId !== username) return refuse('client_id_mismatch')
      const principal = await deps.authenticate(username, Buffer.from(password))
      return principal ? { ok: true, principal } : refuse('bad_credentials')
    },

    /** One publish, subscribe or delivery, checked with the embedded broker's rules. */
    check(principal: Principal, action: 'publish' | 'subscribe' | 'receive', topic: string): Decision {
      const refusal =
        action === 'publish'
          ? canPublish(principal, topic)
          : action === 'subscribe'
            ? canSubscribeFilter(principal, topic)
            : canReceive(principal, topic)
      return refusal ? refuse(refusal) : { ok: true, principal }
    },
  }
}

export type MqttAuthDecisions = ReturnType<typeof createMqttAuthDecisions>

export interface EmqxAclRule {
  permission: 'allow' | 'deny'
  action: 'publish' | 'subscribe' | 'all'
  topic: string
  qos?: number[]
}

/**
 * The `acl` an EMQX authenticator response carries: the principal's topics, then a deny of everything else so that
 * no later authorizer widens it. `eq ` makes EMQX compare the service's wildcard filters as written.
 */
export function emqxAcl(principal: Principal): EmqxAclRule[] {
  const denyRest: EmqxAclRule = { permission: 'deny', action: 'all', topic: '#' }
  if (principal.kind === 'service') {
    const acl = serviceAcl()
    return [
      { permission: 'allow', action: 'publish', topic: acl.publish },
      ...acl.subscribe.map((filter): EmqxAclRule => ({
        permission: 'allow',
        action: 'subscribe',
        topic: `eq ${filter}`,
      })),
      denyRest,
    ]
  }
  const acl = deviceAcl(principal.deviceId)
  return [
    ...acl.publish.map((topic): EmqxAclRule => ({ permission: 'allow', action: 'publish', topic })),
    ...acl.subscribe.map((topic): EmqxAclRule => ({ permission: 'allow', action: 'subscribe', topic })),
    denyRest,
  ]
}
