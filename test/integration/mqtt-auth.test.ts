import type { MqttClient } from 'mqtt'
import { describe, expect } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { createDevice, waitForProps, type CreatedDevice } from '../helpers/devices.js'
import { it as base } from '../helpers/latchkey.js'
import { closed, connectRaw, end, publish, subscribe } from '../helpers/mqtt.js'

type Overrides = { clientId?: string; username?: string; password?: string }

/** `latchkey` plus two devices on it, a raw MQTT connection as a device (ended after the test), refusal counts. */
const it = base.extend<{
  a: CreatedDevice
  b: CreatedDevice
  device: (d: CreatedDevice, overrides?: Overrides) => Promise<MqttClient>
  refusals: (reason: string) => number
}>({
  a: async ({ latchkey }, use) => use(await createDevice(latchkey, 'A')),
  b: async ({ latchkey }, use) => use(await createDevice(latchkey, 'B')),
  device: async ({ defer }, use) => {
    await use(async (d, overrides = {}) => {
      const client = await connectRaw(d.url, {
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.password,
        ...overrides,
      })
      defer(() => client.end(true))
      return client
    })
  },
  refusals: async ({ latchkey }, use) => use((reason) => latchkey.lk.metrics.get('mqtt_refusals_total', { reason })),
})

describe('MQTT authentication', () => {
  it('accepts a device with its own id, username and secret', async ({ a, device }) => {
    // Scenario: the credentials from /devices/create connect.
    const client = await device(a)
    expect(client.connected).toBe(true)
  })

  it.for<[string, (b: CreatedDevice) => Overrides, string]>([
    ['a wrong password', () => ({ password: 'not-the-secret' }), 'bad_credentials'],
    ['a client id that is not the username', (b) => ({ clientId: b.deviceId }), 'client_id_mismatch'],
    [
      'no credentials at all',
      () => ({ username: undefined as unknown as string, password: undefined as unknown as string }),
      'anonymous',
    ],
    [
      'an unknown device',
      () => ({ clientId: '9b2f7a8e-0000-4000-8000-000000000000', username: '9b2f7a8e-0000-4000-8000-000000000000' }),
      'bad_credentials',
    ],
    ["another device's secret", (b) => ({ password: b.password }), 'bad_credentials'],
  ])('refuses %s', async ([, overrides, reason], { a, b, device, refusals }) => {
    // Scenario: each bad connect gets a CONNACK refusal and is counted with its reason.
    await expect(device(a, overrides(b))).rejects.toThrow()
    expect(refusals(reason)).toBe(1)
  })

  it('refuses a deleted device, and closes its live session', async ({ latchkey: t, a, device }) => {
    // Scenario: delete while connected → session closed; reconnecting is refused.
    const client = await device(a)
    const gone = closed(client)
    expect((await t.call('/devices/delete', { device_id: a.deviceId })).status).toBe(200)
    await gone
    await expect(device(a)).rejects.toThrow(/Not authorized|Bad username/i)
  })

  it('refuses a rotated secret at once and accepts the new one', async ({ latchkey: t, a, device }) => {
    // Scenario: rotate_credentials → the live session is closed, the old secret refused, the new one works.
    const client = await device(a)
    const gone = closed(client)
    const rotated = await t.call('/devices/rotate_credentials', { device_id: a.deviceId })
    expect(rotated.status).toBe(200)
    await gone
    await expect(device(a)).rejects.toThrow()
    const fresh = await device(a, { password: rotated.body.mqtt_credentials.password })
    expect(fresh.connected).toBe(true)
  })
})

describe('MQTT authorisation', () => {
  it("refuses a subscription to another device's commands, and wildcards", async ({ a, b, device, refusals }) => {
    // Scenario: SUBACK 0x80 for foreign topics and wildcards; own commands granted.
    const client = await device(a)
    expect(await subscribe(client, deviceTopic(b.deviceId, 'commands'))).toBe(128)
    expect(await subscribe(client, 'latchkey/v1/devices/+/commands')).toBe(128)
    expect(await subscribe(client, '#')).toBe(128)
    expect(await subscribe(client, deviceTopic(a.deviceId, 'acks'))).toBe(128)
    expect(await subscribe(client, deviceTopic(a.deviceId, 'commands'))).toBe(1)
    expect(refusals('foreign_topic') + refusals('wildcard') + refusals('not_allowed')).toBe(4)
  })

  it("refuses a publish on another device's state and leaves that device unchanged", async ({
    latchkey: t,
    a,
    b,
    device,
    refusals,
  }) => {
    // Scenario: A forges B's state → A is disconnected, B's properties untouched; B's own state still lands.
    const forger = await device(a)
    const gone = closed(forger)
    forger.publish(deviceTopic(b.deviceId, 'state'), JSON.stringify({ locked: true, battery_level: 0.01 }), { qos: 1 })
    await gone
    expect(refusals('foreign_topic')).toBe(1)
    const honest = await device(b)
    await publish(honest, deviceTopic(b.deviceId, 'state'), JSON.stringify({ locked: false, battery_level: 0.9 }), true)
    const props = await waitForProps(t, b.deviceId, (p) => p.battery_level === 0.9)
    expect(props.locked).toBe(false)
    await end(honest)
  })

  it('refuses the command topic to devices and uplink topics to nobody else', async ({ a, device, refusals }) => {
    // Scenario: a device publishing a command (even to itself) is refused.
    const client = await device(a)
    const gone = closed(client)
    client.publish(deviceTopic(a.deviceId, 'commands'), '{}', { qos: 1 })
    await gone
    expect(refusals('not_allowed')).toBe(1)
  })
})
