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

export interface DeviceServiceDeps {
  store: DeviceServiceStore
  bus: Bus
  sessions: DeviceSessions
  newId: () => string
  now: () => string
  /** The broker URL handed to devices. */
  mqttPublicUrl: () => string
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
      await store.devices.create({ device, secretHash: sha256(secret), event })
      return { device, mqtt_credentials: credentials(device.device_id, secret) }
    },

    list: (workspaceId: string, query: DeviceListQuery) => store.devices.list(workspaceId, query),

    async update(workspaceId: string, deviceId: string, update: DeviceUpdate): Promise<void> {
      if (!(await store.devices.update(workspaceId, deviceId, update))) throw notFound('device_not_found', 'Device')
    },

    /** Deletes a lock: pending attempts settle as `device_removed` and its MQTT session is closed. */
    async delete(workspaceId: string, deviceId: string): Promise<void> {
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
      if (!(await store.devices.setSecretHash(workspaceId, deviceId, sha256(secret))))
        throw notFound('device_not_found', 'Device')
      deps.sessions.disconnect(deviceId)
      return credentials(deviceId, secret)
    },
  }
}

export type DeviceService = ReturnType<typeof createDeviceService>
