import { sameDigest, sha256 } from './credentials.js'
import type { DeviceStore } from './store.js'

/** Who an MQTT client is once its password checks out. */
export type MqttPrincipal = { kind: 'service' } | { kind: 'device'; deviceId: string }

export interface DeviceAuthDeps {
  /** The orchestrator's own MQTT client. */
  serviceUsername: string
  servicePassword: string
  store: { devices: Pick<DeviceStore, 'secretHash'> }
}

/**
 * Checks an MQTT username/password pair: the service account against its password, any other username as a device
 * id against the hash of that device's current secret. Undefined refuses the connection. Digests compare in
 * constant time.
 */
export function createDeviceAuth(deps: DeviceAuthDeps) {
  const serviceHash = sha256(deps.servicePassword)
  return async function authenticate(username: string, password: Buffer): Promise<MqttPrincipal | undefined> {
    if (username === deps.serviceUsername) {
      return sameDigest(sha256(password), serviceHash) ? { kind: 'service' } : undefined
    }
    const stored = await deps.store.devices.secretHash(username)
    return stored && sameDigest(sha256(password), stored) ? { kind: 'device', deviceId: username } : undefined
  }
}
