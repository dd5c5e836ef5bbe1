import { describe, expect, vi } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { createDevice, waitForProps } from '../helpers/devices.js'
import { it } from '../helpers/external-broker.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { connectRaw, publish } from '../helpers/mqtt.js'

/**
 * Several instances on one external mosquitto (docs/scale-out.md#several-instances): each connects as
 * latchkey-<INSTANCE_ID>, takes its share of the uplinks through `$share/latchkey/…`, and reads the retained
 * presence at start, which a shared subscription does not deliver.
 */

const received = (t: TestLatchkey) => t.lk.metrics.get('mqtt_messages_received_total')

describe('shared uplinks on an external broker', () => {
  it('two instances split the uplinks: each message is handled by exactly one of them', async ({
    external,
    mosquitto,
    defer,
  }) => {
    // Scenario: instances A and B on one mosquitto; a device publishes 20 messages → A and B together receive 20,
    // each some (plain subscriptions would give each all 20).
    const a = await external({ env: { INSTANCE_ID: 'a' } })
    const b = await external({ env: { INSTANCE_ID: 'b' } })
    const device = await createDevice(a, 'shared')
    const client = await connectRaw(mosquitto.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    defer(() => client.end(true))
    const before = received(a) + received(b)
    for (let i = 0; i < 20; i++) await publish(client, deviceTopic(device.deviceId, 'events'), `{"n":${i}}`)
    await vi.waitFor(() => expect(received(a) + received(b) - before).toBeGreaterThanOrEqual(20), { timeout: 10_000 })
    expect(received(a) + received(b) - before).toBe(20)
    expect(received(a)).toBeGreaterThan(0)
    expect(received(b)).toBeGreaterThan(0)
    // Each its own client id, a clean session (c1) and a 15 s keepalive.
    expect(mosquitto.log()).toMatch(/ as latchkey-a \(p2, c1, k15, /)
    expect(mosquitto.log()).toMatch(/ as latchkey-b \(p2, c1, k15, /)
  })

  it('reads the retained status and state at start: a lock that came online while latchkey was down is online', async ({
    external,
    mosquitto,
    defer,
  }) => {
    // Scenario: create a device, stop latchkey; the lock connects and publishes retained `online` and its state;
    // latchkey starts again on the same data → the device is online with that state, though its shared
    // subscription got no retained message.
    const first = await external({ keep: true })
    const device = await createDevice(first, 'came online while down')
    await first.close()
    const client = await connectRaw(mosquitto.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    defer(() => client.end(true))
    await publish(client, deviceTopic(device.deviceId, 'status'), 'online', true)
    await publish(client, deviceTopic(device.deviceId, 'state'), JSON.stringify({ locked: true }), true)
    const again = await external({ dataDir: first.dataDir })
    const props = await waitForProps(again, device.deviceId, (p) => p.online === true && p.locked === true)
    expect(props.online).toBe(true)
    // Read through the plain subscription, not only through the shared one (mosquitto 2.0 also delivers retained
    // messages to a shared subscription; EMQX and the MQTT 5 rules do not).
    await vi.waitFor(() => expect(again.lk.metrics.get('mqtt_retained_read_total')).toBe(2), { timeout: 10_000 })
    // The same `online` arrived both ways: handled twice, it still makes one device.connected.
    const events = await again.call('/events/list', { device_id: device.deviceId, event_type: 'device.connected' })
    expect(events.body.events).toHaveLength(1)
  })

  it('a start on an external broker leaves presence as stored: the broker still holds the sessions', async ({
    external,
    mosquitto,
    defer,
  }) => {
    // Scenario: a device online without a retained status (it published `online` unretained); latchkey restarts on
    // the same data → still online at once (with the embedded broker every device would be marked offline).
    const first = await external({ keep: true })
    const device = await createDevice(first, 'stays online')
    const client = await connectRaw(mosquitto.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    defer(() => client.end(true))
    await publish(client, deviceTopic(device.deviceId, 'status'), 'online')
    await waitForProps(first, device.deviceId, (p) => p.online === true)
    await first.close()
    const again = await external({ dataDir: first.dataDir })
    const got = await again.call('/devices/get', { device_id: device.deviceId })
    expect(got.body.device.properties.online).toBe(true)
  })
})
