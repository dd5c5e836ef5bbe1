import {
  AckSchema,
  DeviceEventSchema,
  DeviceStateSchema,
  MAX_PAYLOAD_BYTES,
  parseDeviceTopic,
  parseJsonPayload,
  parseStatus,
  type TopicKind,
} from '../../devices/index.js'
import { assertNever } from '../domain/assert.js'
import { iso, type Clock } from '../domain/clock.js'
import { applyDeviceEvent, applyState, applyStatus, type DeviceRecord } from '../domain/device.js'
import type { AttemptService } from './attempts.js'
import type { Bus } from './bus.js'
import type { Metrics } from './metrics.js'
import type { DeviceStore } from './store.js'

export interface DeviceMessageDeps {
  /** Device messages change devices; acks go through the attempt service. */
  store: { devices: Pick<DeviceStore, 'change'> }
  attempts: AttemptService
  clock: Clock
  metrics: Metrics
  bus: Bus
  /**
   * Commit each message when the current task ends (default) instead of with the loop turn's group commit: for a
   * transport that reads the next device message only after the previous one is acknowledged (the mqtt.js client
   * of an external broker), a loop turn per message would stall every device. The in-process transport hands
   * different devices' messages over concurrently, so they share one commit (WriteOptions.urgent).
   */
  urgent?: boolean
}

/**
 * One handler per kind of device message behind one dispatcher. Each resolves after its effect is committed, and
 * never throws for bad input: malformed, oversize or foreign messages are dropped and counted (docs/mqtt.md).
 */
export function createDeviceMessageHandler(deps: DeviceMessageDeps) {
  const { store, metrics } = deps
  const URGENT = { urgent: deps.urgent ?? true } as const
  const now = () => iso(deps.clock.now())
  const drop = (reason: string) => metrics.inc('mqtt_messages_dropped_total', { reason })
  const changed = (device: DeviceRecord | undefined) => {
    if (device) deps.bus.emit('deviceChanged', device)
    return device
  }

  async function handleAck(deviceId: string, payload: Buffer): Promise<void> {
    const ack = parseJsonPayload(AckSchema, payload)
    if (!ack) return drop('malformed_ack')
    const state = ack.state
    // Queued together, so both land in one transaction.
    await Promise.all([
      state
        ? store.devices.change(deviceId, (device) => applyState(device, state, now()), URGENT).then(changed)
        : undefined,
      deps.attempts.handleAck(deviceId, ack, URGENT.urgent),
    ])
  }

  async function handleState(deviceId: string, payload: Buffer): Promise<void> {
    const state = parseJsonPayload(DeviceStateSchema, payload)
    if (!state) return drop('malformed_state')
    const device = changed(await store.devices.change(deviceId, (current) => applyState(current, state, now()), URGENT))
    if (!device) drop('unknown_device')
  }

  async function handleStatus(deviceId: string, payload: Buffer): Promise<void> {
    const status = parseStatus(payload)
    if (!status) return drop('malformed_status')
    const online = status === 'online'
    const device = changed(
      await store.devices.change(deviceId, (current) => applyStatus(current, online, now()), URGENT),
    )
    if (!device) return drop('unknown_device')
    if (online) await deps.attempts.deviceOnline(deviceId)
  }

  async function handleEvent(deviceId: string, payload: Buffer): Promise<void> {
    const event = parseJsonPayload(DeviceEventSchema, payload)
    if (!event) return drop('malformed_event')
    const dedupeKey = event.event_id === undefined ? undefined : `${deviceId}/${event.event_id}`
    const device = changed(
      await store.devices.change(deviceId, (current) => applyDeviceEvent(current, event, now()), {
        ...URGENT,
        dedupeKey,
      }),
    )
    if (!device) drop('unknown_device')
  }

  function route(kind: TopicKind, deviceId: string, payload: Buffer): Promise<void> {
    switch (kind) {
      case 'acks':
        return handleAck(deviceId, payload)
      case 'state':
        return handleState(deviceId, payload)
      case 'status':
        return handleStatus(deviceId, payload)
      case 'events':
        return handleEvent(deviceId, payload)
      case 'commands':
        drop('unexpected_topic')
        return Promise.resolve()
      default:
        return assertNever(kind)
    }
  }

  return async function handleDeviceMessage(topic: string, payload: Buffer): Promise<void> {
    metrics.inc('mqtt_messages_received_total')
    if (payload.length > MAX_PAYLOAD_BYTES) return drop('oversize')
    const parsed = parseDeviceTopic(topic)
    if (!parsed) return drop('unexpected_topic')
    await route(parsed.kind, parsed.deviceId, payload)
  }
}

export type DeviceMessageHandler = ReturnType<typeof createDeviceMessageHandler>
