import { deviceTopicRoot } from '../../devices/index.js'
import { removeDevice } from '../domain/attempt.js'
import { initialProps, type CustomMetadata, type DeviceRecord } from '../domain/device.js'
import { notFound } from '../domain/errors.js'
import type { DeviceListQuery } from '../domain/queries.js'
import type { Bus } from './bus.js'
import { newDeviceSecret, sha256 } from './credentials.js'
import type { DeviceStore, DeviceUpdate } from './store.js'

/** Closes a device's live MQTT session; the embedded broker can, an external one is left to its own expiry. */
export interface DeviceSessions {
  disconnect(deviceId: string): void
}

/** The part of the store the device service uses. */
export interface DeviceServiceStore {
  devices: Pick<DeviceStore, 'create' | 'get' | 'list' | 'update' | 'delete' | 'setSecretHash'>
}

/**
 * Keeps an external broker's device credentials in step (MQTT_DEVICE_AUTH=dynsec, docs/scale-out.md). Each call
 * may fail with a 503 when the broker does not answer; the device service then changes nothing it cannot undo.
 */
export interface DeviceProvisioner {
  provision(deviceId: string, secret: string): Promise<void>
  rotate(deviceId: string, secret: string): Promise<void>
  remove(deviceId: string): Promise<void>
}

export interface DeviceServiceDeps {
  store: DeviceServiceStore
  bus: Bus
  sessions: DeviceSessions
  newId: () => string
  now: () => string
  /** The broker URL handed to devices. */
  mqttPublicUrl: () => string
  /** Present when latchkey provisions an external broker; absent with the embedded broker and the HTTP callbacks. */
  provisioner?: DeviceProvisioner | undefined
  onError?: (error: unknown, context: string) => void
}

export interface MqttCredentials {
  url: string
  client_id: string
  username: string
  password: string
  topic_root: string
}

export interface NewDeviceInput {
  name: string
  custom_metadata?: CustomMetadata | undefined
  can_remotely_lock?: boolean | undefined
  can_remotely_unlock?: boolean | undefined
}

export function createDeviceService(deps: DeviceServiceDeps) {
  const { store } = deps

  function credentials(deviceId: string, password: string): MqttCredentials {
    return {
      url: deps.mqttPublicUrl(),
      client_id: deviceId,
      username: deviceId,
      password,
      topic_root: deviceTopicRoot(deviceId),
    }
  }

  async function get(workspaceId: string, deviceId: string): Promise<DeviceRecord> {
    const device = await store.devices.get(workspaceId, deviceId)
    if (!device) throw notFound('device_not_found', 'Device')
    return device
  }

  return {
    get,

    /** Creates a lock; its secret is returned here once and only its hash is kept. */
    async create(workspaceId: string, input: NewDeviceInput) {
      const now = deps.now()
      const device: DeviceRecord = {
        device_id: deps.newId(),
        workspace_id: workspaceId,
        display_name: input.name,
        nickname: null,
        custom_metadata: input.custom_metadata ?? {},
        created_at: now,
        can_remotely_lock: input.can_remotely_lock ?? true,
        can_remotely_unlock: input.can_remotely_unlock ?? true,
        props: initialProps(),
      }
      const secret = newDeviceSecret()
      const event = {
        event_type: 'device.added' as const,
        workspace_id: workspaceId,
        device_id: device.device_id,
        occurred_at: now,
      }
      // The broker client first: a device row never exists without one. A row that fails takes its client along.
      await deps.provisioner?.provision(device.device_id, secret)
      try {
        await store.devices.create({ device, secretHash: sha256(secret), event })
      } catch (error) {
        await deps.provisioner
          ?.remove(device.device_id)
          // Left for the start-up reconciler, which removes broker clients whose device is gone.
          .catch((undo: unknown) => deps.onError?.(undo, `remove broker client of ${device.device_id}`))
        throw error
      }
      return { device, mqtt_credentials: credentials(device.device_id, secret) }
    },

    list: (workspaceId: string, query: DeviceListQuery) => store.devices.list(workspaceId, query),

    async update(workspaceId: string, deviceId: string, update: DeviceUpdate): Promise<void> {
      if (!(await store.devices.update(workspaceId, deviceId, update))) throw notFound('device_not_found', 'Device')
    },

    /** Deletes a lock: pending attempts settle as `device_removed` and its MQTT session is closed. */
    async delete(workspaceId: string, deviceId: string): Promise<void> {
      // The broker first (this workspace's device only): a broker that does not answer leaves the device as it was.
      if (deps.provisioner) {
        await get(workspaceId, deviceId)
        await deps.provisioner.remove(deviceId)
      }
      const now = deps.now()
      const event = {
        event_type: 'device.deleted' as const,
        workspace_id: workspaceId,
        device_id: deviceId,
        occurred_at: now,
      }
      const settled = await store.devices.delete(workspaceId, deviceId, event, (attempt) => removeDevice(attempt, now))
      if (!settled) throw notFound('device_not_found', 'Device')
      deps.sessions.disconnect(deviceId)
      for (const attempt of settled) deps.bus.emit('attemptSettled', attempt)
    },

    /** New secret; the old one stops working at once and the live session is closed. */
    async rotateCredentials(workspaceId: string, deviceId: string): Promise<MqttCredentials> {
      const secret = newDeviceSecret()
      // The broker first: when it does not answer, the device keeps its old secret and the call fails with 503.
      if (deps.provisioner) {
        await get(workspaceId, deviceId)
        await deps.provisioner.rotate(deviceId, secret)
      }
      if (!(await store.devices.setSecretHash(workspaceId, deviceId, sha256(secret))))
        throw notFound('device_not_found', 'Device')
      deps.sessions.disconnect(deviceId)
      return credentials(deviceId, secret)
    },
  }
}

export type DeviceService = ReturnType<typeof createDeviceService>
