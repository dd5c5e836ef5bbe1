import fc from 'fast-check'
import { connect as connectTcp } from 'node:net'
import type { MqttClient } from 'mqtt'
import { describe, expect, test, vi } from 'vitest'
import { deviceTopic, type TopicKind } from '../../devices/index.js'
import { createDevice, waitForProps, type CreatedDevice } from '../helpers/devices.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { ADMIN_KEY, request, startTestLatchkey, type TestLatchkey } from '../helpers/latchkey.js'
import { connectRaw, publish } from '../helpers/mqtt.js'

/**
 * Hostile devices against a running latchkey (docs/security.md, "MQTT"): the limits seen through its metrics, and
 * a seeded, bounded property run over every device payload kind. A fake clock keeps attempts pending and token
 * buckets still, so nothing here depends on timing.
 */

interface Fixture {
  start: (env?: Record<string, string>) => Promise<TestLatchkey & { clock: FakeClock }>
  /** A device's own MQTT connection, ended at teardown. */
  device: (t: TestLatchkey, d: CreatedDevice, password?: string) => Promise<MqttClient>
}

const it = test.extend<Fixture>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  start: async ({}, use) => {
    const started: TestLatchkey[] = []
    await use(async (env = {}) => {
      const clock = new FakeClock()
      const t = await startTestLatchkey({ env, clock })
      started.push(t)
      return Object.assign(t, { clock })
    })
    for (const t of started) await t.close()
  },
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  device: async ({}, use) => {
    const clients: MqttClient[] = []
    await use(async (_t, d, password = d.password) => {
      const client = await connectRaw(d.url, { clientId: d.deviceId, username: d.deviceId, password })
      clients.push(client)
      return client
    })
    for (const client of clients) client.end(true)
  },
})

const count = (t: TestLatchkey, name: string, reason: string) => t.lk.metrics.get(name, { reason })

describe('MQTT limits through latchkey', () => {
  it('closes an unauthenticated 200 MB PUBLISH at its header and keeps serving devices', async ({ start, device }) => {
    // Scenario: a raw socket sends a PUBLISH header claiming 200 MB and streams → closed, counted as not_connect;
    // a real device connects and reports state afterwards.
    const t = await start()
    const port = Number(new URL(t.lk.mqttUrl).port)
    const socket = connectTcp(port, '127.0.0.1')
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x64]))
    for (let i = 0; i < 64 && !socket.destroyed; i++) socket.write(Buffer.alloc(64 * 1024))
    await closed
    expect(count(t, 'mqtt_refusals_total', 'not_connect')).toBe(1)
    const d = await createDevice(t)
    await publish(await device(t, d), deviceTopic(d.deviceId, 'state'), JSON.stringify({ locked: true }), true)
    await waitForProps(t, d.deviceId, (p) => p.locked === true)
  })

  it("drops a chatty device's excess, counted, while another device's state still lands", async ({ start, device }) => {
    // Scenario: burst 5, clock frozen → 8 state messages from A: 5 applied, 3 dropped as rate_limited; B is
    // unaffected.
    const t = await start({ MQTT_DEVICE_PUBLISH_BURST: '5', MQTT_DEVICE_PUBLISH_RATE: '1' })
    const a = await createDevice(t, 'chatty')
    const b = await createDevice(t, 'quiet')
    const chatty = await device(t, a)
    for (let i = 1; i <= 8; i++)
      await publish(chatty, deviceTopic(a.deviceId, 'state'), JSON.stringify({ locked: true, battery_level: i / 10 }))
    expect(count(t, 'mqtt_messages_dropped_total', 'rate_limited')).toBe(3)
    await waitForProps(t, a.deviceId, (p) => p.battery_level === 0.5)
    await publish(await device(t, b), deviceTopic(b.deviceId, 'state'), JSON.stringify({ locked: false }))
    await waitForProps(t, b.deviceId, (p) => p.locked === false)
    expect((await t.call('/devices/get', { device_id: a.deviceId })).body.device.properties.battery_level).toBe(0.5)
  })

  it('throttles failed logins per address, counted', async ({ start, device }) => {
    // Scenario: 2 failures a minute allowed → the third connect, even with the right secret, is refused as
    // throttled; 30 s later (one token back) the device connects.
    const t = await start({ MQTT_AUTH_FAILURES_PER_MINUTE: '2' })
    const d = await createDevice(t)
    await expect(device(t, d, 'wrong')).rejects.toThrow()
    await expect(device(t, d, 'wrong')).rejects.toThrow()
    await expect(device(t, d)).rejects.toThrow()
    expect(count(t, 'mqtt_refusals_total', 'bad_credentials')).toBe(2)
    expect(count(t, 'mqtt_refusals_total', 'throttled')).toBe(1)
    t.clock.advance(30_000)
    expect((await device(t, d)).connected).toBe(true)
  })
})

// ---- property-based: every payload kind a device may publish ------------------------------------------------

const KINDS: TopicKind[] = ['acks', 'state', 'status', 'events']

/** Payloads near the schemas (so the handlers get past parsing) and far from them. */
function payloads(commandIds: string[]): fc.Arbitrary<string | Uint8Array> {
  const anyValue = fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.constant(null), fc.integer())
  const commandId = fc.oneof(fc.constantFrom(...commandIds), fc.uuid(), fc.string({ maxLength: 40 }))
  const state = fc.record(
    {
      locked: fc.oneof(fc.boolean(), anyValue),
      door_open: fc.oneof(fc.boolean(), anyValue),
      jammed: fc.boolean(),
      battery_level: fc.oneof(fc.double({ min: -1, max: 2, noNaN: false }), anyValue),
      firmware_version: fc.string({ maxLength: 80 }),
    },
    { requiredKeys: [] },
  )
  const ack = fc.record(
    {
      command_id: commandId,
      status: fc.oneof(fc.constantFrom('accepted', 'success', 'error'), fc.string()),
      error: fc.record({ type: fc.string({ maxLength: 70 }), message: fc.string() }, { requiredKeys: [] }),
      state,
    },
    { requiredKeys: ['command_id'] },
  )
  const event = fc.record(
    {
      event_id: fc.oneof(fc.uuid(), fc.string()),
      type: fc.oneof(
        fc.constantFrom('lock.locked', 'lock.unlocked', 'lock.access_denied', 'device.tampered'),
        fc.string(),
      ),
      method: fc.oneof(fc.constantFrom('manual', 'keycode', 'automatic', 'card', 'unknown'), fc.string()),
      occurred_at: fc.oneof(
        fc.date({ min: new Date(0), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
        fc.string(),
      ),
    },
    { requiredKeys: [] },
  )
  return fc.oneof(
    { arbitrary: fc.oneof(ack, state, event).map((value) => JSON.stringify(value)), weight: 6 },
    { arbitrary: fc.constantFrom('online', 'offline', ' online\n', 'ONLINE', '', 'null', '{}', '[]'), weight: 2 },
    { arbitrary: fc.json({ maxDepth: 3 }), weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 1 },
    // Past the 16 KiB payload contract, under the packet limit: dropped by the broker, connection kept.
    { arbitrary: fc.integer({ min: 16 * 1024 + 1, max: 19 * 1024 }).map((n) => '"'.padEnd(n, 'x')), weight: 1 },
  )
}

describe('device payloads, property-based', () => {
  it("never crash latchkey, never answer 5xx, never touch another workspace's devices or attempts", async ({
    start,
    device,
  }) => {
    // Scenario: device A in workspace 1 publishes 60 seeded random payloads on its acks/state/status/events
    // (including acks naming workspace 2's pending attempt). After each, the API answers 2xx; at the end workspace
    // 2's device and attempt are exactly as before.
    const t = await start({ MQTT_DEVICE_PUBLISH_RATE: '1000000', MQTT_DEVICE_PUBLISH_BURST: '1000000' })
    const other = await request(t.lk.httpUrl, '/workspaces/create', { name: 'other' }, ADMIN_KEY)
    const otherKey: string = other.body.api_key.token
    const a = await createDevice(t, 'fuzzer')
    const b = await createDevice(t, 'bystander', {}, otherKey)
    const bClient = await device(t, b)
    await publish(bClient, deviceTopic(b.deviceId, 'status'), 'online', true)
    await publish(bClient, deviceTopic(b.deviceId, 'state'), JSON.stringify({ locked: true, battery_level: 0.5 }), true)
    await waitForProps(t, b.deviceId, (p) => p.online === true && p.battery_level === 0.5, otherKey)
    const foreign = await t.call('/locks/unlock_door', { device_id: b.deviceId, sync: false }, otherKey)
    const own = await t.call('/locks/unlock_door', { device_id: a.deviceId, sync: false })
    const foreignId: string = foreign.body.action_attempt.action_attempt_id
    const ownId: string = own.body.action_attempt.action_attempt_id
    const snapshot = async () => ({
      devices: (await t.call('/devices/list', {}, otherKey)).body,
      attempt: (await t.call('/action_attempts/get', { action_attempt_id: foreignId }, otherKey)).body,
      history: (await t.call('/action_attempts/history', { action_attempt_id: foreignId }, otherKey)).body,
      events: (await t.call('/events/list', {}, otherKey)).body,
    })
    const before = await snapshot()
    expect(before.attempt.action_attempt.status).toBe('pending')

    const fuzzer = await device(t, a)
    let barrier = 0
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...KINDS), payloads([foreignId, ownId]), async (kind, payload) => {
        await publish(fuzzer, deviceTopic(a.deviceId, kind), Buffer.from(payload), false)
        // A valid state after it: once it shows, the fuzz message before it has been handled.
        const level = ++barrier / 1000
        await publish(fuzzer, deviceTopic(a.deviceId, 'state'), JSON.stringify({ locked: true, battery_level: level }))
        await waitForProps(t, a.deviceId, (p) => p.battery_level === level)
        for (const path of ['/devices/list', '/action_attempts/list', '/events/list']) {
          const res = await t.call(path, {})
          expect(res.status, `${path} after ${kind} ${JSON.stringify(payload)}`).toBeLessThan(500)
        }
        expect(fuzzer.connected).toBe(true)
      }),
      { seed: 0x1a7c4e, numRuns: 60, endOnFailure: true },
    )

    expect(await snapshot()).toEqual(before)
    expect((await fetch(`${t.lk.httpUrl}/readyz`)).status).toBe(200)
    await vi.waitFor(() => expect(t.lk.metrics.total('mqtt_messages_received_total')).toBeGreaterThan(60))
  })
})
