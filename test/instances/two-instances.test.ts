import { describe, expect, vi } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { createDevice, waitForProps } from '../helpers/devices.js'
import { instanceEnv, it as base, testDevice } from '../helpers/cluster.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { closed, connectRaw, publish, subscribe } from '../helpers/mqtt.js'

/**
 * Two instances, A and B, on one PostgreSQL and one mosquitto with dynamic security (docs/scale-out.md): any
 * instance serves any request, whichever instance receives the device's messages.
 */
const it = base.extend<{ pair: { a: TestLatchkey; b: TestLatchkey; key: string } }>({
  pair: async ({ createDatabase, mosquitto, start }, use) => {
    const url = await createDatabase('latchkey_pair')
    const a = await start({ env: instanceEnv(mosquitto, url, 'a') })
    const b = await start({ env: instanceEnv(mosquitto, url, 'b') })
    // A's first start made the workspace; B serves it with the same key.
    await use({ a, b, key: a.apiKey })
  },
})

const settledSuccess = (t: TestLatchkey) =>
  t.lk.metrics.get('action_attempts_total', { action_type: 'LOCK_DOOR', status: 'success' })

describe('two instances on PostgreSQL and mosquitto with dynsec', () => {
  it('a lock requested through A whose ack B receives: sync:true on A answers success', async ({
    pair,
    mosquitto,
    defer,
  }) => {
    // Scenario: the device acks each command once; the shared subscription hands acks to A and B in turn, so
    // within a few locks one is settled by B. Each sync:true request through A answers success all the same.
    const { a, b, key } = pair
    const device = await createDevice(a, 'shared lock')
    const client = await testDevice(mosquitto.url, device.deviceId, device.password, { acks: true })
    defer(() => client.end(true))
    await waitForProps(b, device.deviceId, (p) => p.online === true, key)
    for (let i = 0; i < 6 && settledSuccess(b) === 0; i++) {
      const startedMs = Date.now()
      const res = await a.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
      expect(res.status).toBe(200)
      expect(res.body.action_attempt.status).toBe('success')
      // Woken when settled, not answered by its own deadline (ACTION_TIMEOUT_MS, 8 s) running out.
      expect(Date.now() - startedMs).toBeLessThan(3000)
    }
    expect(settledSuccess(b)).toBeGreaterThan(0)
    // A heard of it through PostgreSQL's NOTIFY from B's settle transaction, not by its poll.
    expect(a.lk.metrics.get('attempt_wakes_total', { by: 'notification' })).toBeGreaterThan(0)
  })

  it('rotate_credentials and delete through B close the session of a device created through A', async ({
    pair,
    mosquitto,
    defer,
  }) => {
    const { a, b, key } = pair
    const device = await createDevice(a, 'rotated')
    const first = await connectRaw(mosquitto.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    defer(() => first.end(true))
    const kicked = closed(first)
    const rotated = await b.call('/devices/rotate_credentials', { device_id: device.deviceId }, key)
    expect(rotated.status).toBe(200)
    await kicked
    await expect(
      connectRaw(mosquitto.url, { clientId: device.deviceId, username: device.deviceId, password: device.password }),
    ).rejects.toThrow(/Not authorized/i)
    const password = rotated.body.mqtt_credentials.password as string
    const second = await connectRaw(mosquitto.url, { clientId: device.deviceId, username: device.deviceId, password })
    defer(() => second.end(true))
    const gone = closed(second)
    expect((await b.call('/devices/delete', { device_id: device.deviceId }, key)).status).toBe(200)
    await gone
    await expect(
      connectRaw(mosquitto.url, { clientId: device.deviceId, username: device.deviceId, password }),
    ).rejects.toThrow(/Not authorized/i)
  })

  it("a device can neither subscribe to nor publish on another device's topics", async ({ pair, mosquitto, defer }) => {
    // Scenario: X subscribes to Y's commands → refused (128); X publishes `online` on Y's status, then on its own →
    // once X is online (on both instances' shared database), Y is still offline.
    const { a, b, key } = pair
    const x = await createDevice(a, 'x')
    const y = await createDevice(b, 'y', {}, key)
    const client = await connectRaw(mosquitto.url, { clientId: x.deviceId, username: x.deviceId, password: x.password })
    defer(() => client.end(true))
    expect(await subscribe(client, deviceTopic(y.deviceId, 'commands'))).toBe(128)
    expect(await subscribe(client, deviceTopic(y.deviceId, 'acks'))).toBe(128)
    await publish(client, deviceTopic(y.deviceId, 'status'), 'online')
    await publish(client, deviceTopic(x.deviceId, 'status'), 'online')
    await waitForProps(a, x.deviceId, (p) => p.online === true)
    const got = await b.call('/devices/get', { device_id: y.deviceId }, key)
    expect(got.body.device.properties.online).toBe(false)
    await vi.waitFor(() => expect(client.connected).toBe(true))
  })
})
