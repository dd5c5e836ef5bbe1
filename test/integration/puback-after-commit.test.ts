import type { MqttClient } from 'mqtt'
import { expect, vi } from 'vitest'
import { createBroker, type Broker } from '../../broker/index.js'
import { deviceTopic } from '../../devices/index.js'
import { createInProcessTransport } from '../../src/mqtt/in-process-transport.js'
import { createDevice, waitForProps, type CreatedDevice } from '../helpers/devices.js'
import { it } from '../helpers/latchkey.js'
import { connectRaw, end, publish } from '../helpers/mqtt.js'

/** A commit the test holds open: the sink's promise for a message resolves only when the test releases it. */
class HeldCommits {
  readonly seen: string[] = []
  private readonly held = new Map<string, { release: () => void; fail: (error: Error) => void }>()

  sink = (topic: string, payload: Buffer): Promise<void> => {
    const text = payload.toString()
    this.seen.push(text)
    if (!text.startsWith('hold')) return Promise.resolve()
    return new Promise<void>((resolve, reject) => this.held.set(text, { release: resolve, fail: reject }))
  }

  release(text: string): void {
    this.held.get(text)!.release()
  }

  fail(text: string): void {
    this.held.get(text)!.fail(new Error('commit failed'))
  }
}

/** The embedded broker with device auth accepting any password, and the in-process transport started on `sink`. */
async function embedded(
  defer: (close: () => unknown) => void,
  sink: HeldCommits['sink'],
  drops: string[] = [],
  burst = 1000,
): Promise<Broker> {
  const broker = await createBroker({
    host: '127.0.0.1',
    port: 0,
    routeDevicePublishes: true,
    limits: {
      maxPacketBytes: 65_536,
      devicePublishPerSecond: burst === 1000 ? 1000 : 0.001,
      devicePublishBurst: burst,
      authFailuresPerMinute: 10,
    },
    authenticate: async (username) => ({ kind: 'device', deviceId: username }),
    onRefused: () => {},
    onDropped: (reason) => drops.push(reason),
  })
  defer(() => broker.close())
  const transport = createInProcessTransport({ broker, onError: () => {} })
  await transport.start(sink)
  defer(() => transport.close())
  return broker
}

async function device(defer: (close: () => unknown) => void, port: number, id: string) {
  const client = await connectRaw(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    username: id,
    password: 'pw',
    clean: false,
    reconnectPeriod: 20,
  })
  defer(() => end(client))
  return client
}

/** Lock A's `state` then its ack, back to back; resolves once both reached the sink, with their PUBACKs' promises. */
async function stateThenAck(a: MqttClient, commits: HeldCommits, state: string, ack: string) {
  const sent: [Promise<void>, Promise<void>] = [
    publish(a, deviceTopic('lock-a', 'state'), state),
    publish(a, deviceTopic('lock-a', 'acks'), ack),
  ]
  await vi.waitFor(() => expect(commits.seen).toEqual([state, ack]))
  return sent
}

it('sends the device its PUBACK only after the message is committed', async ({ defer }) => {
  // Scenario: lock A's ack is held uncommitted; lock B completes a whole round trip meanwhile; A's publish must
  // still be unacknowledged, and acknowledged once the commit is released.
  const commits = new HeldCommits()
  const broker = await embedded(defer, commits.sink)
  const a = await device(defer, broker.port, 'lock-a')
  const b = await device(defer, broker.port, 'lock-b')

  let acknowledged = false
  const first = publish(a, deviceTopic('lock-a', 'acks'), 'hold-1').then(() => (acknowledged = true))
  await vi.waitFor(() => expect(commits.seen).toContain('hold-1'))
  // A PUBACK written before the commit would have reached A by the end of B's round trip on the same broker.
  await publish(b, deviceTopic('lock-b', 'acks'), 'free-1')
  await publish(b, deviceTopic('lock-b', 'state'), 'free-2')
  expect(acknowledged).toBe(false)

  commits.release('hold-1')
  await first
  expect(acknowledged).toBe(true)
})

it("hands one device's messages over as they arrive, in order, and acknowledges each after the one before", async ({
  defer,
}) => {
  // Scenario: A sends two messages back to back while the first one's commit is held; the second reaches the sink at
  // once (so both can share a commit), but its PUBACK waits for the first one's.
  const commits = new HeldCommits()
  const broker = await embedded(defer, commits.sink)
  const a = await device(defer, broker.port, 'lock-a')
  const b = await device(defer, broker.port, 'lock-b')

  let secondAcknowledged = false
  const [first, acked] = await stateThenAck(a, commits, 'hold-1', 'free-after')
  const second = acked.then(() => (secondAcknowledged = true))
  // Another device is not held up by A's open commit, and by the end of its round trip A's second PUBACK would have
  // arrived had it not waited for the first.
  await publish(b, deviceTopic('lock-b', 'acks'), 'free-b')
  expect(secondAcknowledged).toBe(false)

  commits.release('hold-1')
  await Promise.all([first, second])
  expect(secondAcknowledged).toBe(true)
})

it("fails a device's message whose predecessor failed: the device publishes both again, in order", async ({
  defer,
}) => {
  // Scenario: A's first message fails to commit while its second one (already handed over) succeeds → neither is
  // acknowledged, A's connection is closed, and A sends both again after reconnecting, the second one too.
  const commits = new HeldCommits()
  const broker = await embedded(defer, commits.sink)
  const a = await device(defer, broker.port, 'lock-a')

  const sent = Promise.all(await stateThenAck(a, commits, 'hold-first', 'free-second'))
  commits.fail('hold-first')
  // mqtt.js resends its unacknowledged messages one at a time, each after the previous one's PUBACK.
  await vi.waitFor(() => expect(commits.seen.slice(2)).toEqual(['hold-first']))
  commits.release('hold-first')
  await sent
  expect(commits.seen.slice(2)).toEqual(['hold-first', 'free-second'])
})

it('leaves a message whose commit failed unacknowledged, and the device publishes it again', async ({ defer }) => {
  // Scenario: the commit of A's ack fails → A's connection is closed without PUBACK → A reconnects and resends the
  // same message, which then commits and is acknowledged.
  const commits = new HeldCommits()
  const broker = await embedded(defer, commits.sink)
  const a = await device(defer, broker.port, 'lock-a')

  const sent = publish(a, deviceTopic('lock-a', 'acks'), 'hold-again')
  await vi.waitFor(() => expect(commits.seen).toEqual(['hold-again']))
  commits.fail('hold-again')
  await vi.waitFor(() => expect(commits.seen).toEqual(['hold-again', 'hold-again']))
  commits.release('hold-again')
  await sent
})

it('leaves a message unacknowledged when the sink throws instead of rejecting, and the device sends it again', async ({
  defer,
}) => {
  // Scenario: the sink throws synchronously on A's first message → no PUBACK, A's connection is closed, A resends, and
  // the second try reaches the sink and is acknowledged.
  const commits = new HeldCommits()
  const broker = await embedded(defer, commits.sink)
  let calls = 0
  broker.setPublishSink((topic, payload) => {
    if (calls++ === 0) throw new Error('a sink that throws')
    return commits.sink(topic, payload)
  })
  const a = await device(defer, broker.port, 'lock-a')
  await publish(a, deviceTopic('lock-a', 'state'), 'free-second-try')
  expect(calls).toBe(2)
  expect(commits.seen).toEqual(['free-second-try'])
})

it('in latchkey, acknowledges a lock state message only once the state is stored', async ({ latchkey, defer }) => {
  // Scenario: latchkey with its embedded broker; lock A's `state` write is held by the test before it commits; lock
  // B completes a round trip meanwhile; A is unacknowledged until the write is released, and once acknowledged the
  // state reads back through the API.
  const [a, b] = [await createDevice(latchkey, 'A'), await createDevice(latchkey, 'B')]
  const connect = async (d: CreatedDevice) => {
    const client = await connectRaw(d.url, { clientId: d.deviceId, username: d.deviceId, password: d.password })
    defer(() => end(client))
    return client
  }
  const [lockA, lockB] = [await connect(a), await connect(b)]

  const devices = latchkey.lk.store.devices
  const change = devices.change.bind(devices)
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let heldCalls = 0
  devices.change = async (deviceId, decide, options) => {
    if (deviceId === a.deviceId) {
      heldCalls++
      await gate
    }
    return change(deviceId, decide, options)
  }
  defer(() => (devices.change = change))

  let acknowledged = false
  const state = JSON.stringify({ locked: true, door_open: false })
  const sent = publish(lockA, deviceTopic(a.deviceId, 'state'), state).then(() => (acknowledged = true))
  await vi.waitFor(() => expect(heldCalls).toBe(1))
  await publish(lockB, deviceTopic(b.deviceId, 'state'), state)
  expect(acknowledged).toBe(false)

  release()
  await sent
  const res = await latchkey.call('/devices/get', { device_id: a.deviceId })
  expect(res.body.device.properties.locked).toBe(true)
})

it("in latchkey, commits a lock's `state` and the ack sent right after it together, in the order sent", async ({
  latchkey,
  defer,
}) => {
  // Scenario: an online lock answers a command with `state` (unlocked) and, back to back, a success ack whose state
  // is locked → the ack's device write is queued before the `state` write has committed (one commit for both), and
  // the device ends up as the ack left it.
  const a = await createDevice(latchkey, 'A')
  const lock = await connectRaw(a.url, { clientId: a.deviceId, username: a.deviceId, password: a.password })
  defer(() => end(lock))
  await publish(lock, deviceTopic(a.deviceId, 'status'), 'online', true)
  await waitForProps(latchkey, a.deviceId, (props) => props.online === true)
  const created = await latchkey.call('/locks/lock_door', { device_id: a.deviceId, sync: false })
  const commandId: string = created.body.action_attempt.action_attempt_id

  const devices = latchkey.lk.store.devices
  const change = devices.change.bind(devices)
  const writes: string[] = []
  devices.change = (deviceId, decide, options) => {
    if (deviceId !== a.deviceId) return change(deviceId, decide, options)
    const n = writes.filter((entry) => entry.startsWith('queued')).length + 1
    writes.push(`queued ${n}`)
    return change(deviceId, decide, options).then((device) => (writes.push(`committed ${n}`), device))
  }
  defer(() => (devices.change = change))

  await Promise.all([
    publish(lock, deviceTopic(a.deviceId, 'state'), JSON.stringify({ locked: false, door_open: false })),
    publish(
      lock,
      deviceTopic(a.deviceId, 'acks'),
      JSON.stringify({ command_id: commandId, status: 'success', state: { locked: true, door_open: false } }),
    ),
  ])
  expect(writes).toEqual(['queued 1', 'queued 2', 'committed 1', 'committed 2'])
  const res = await latchkey.call('/action_attempts/get', { action_attempt_id: commandId })
  expect(res.body.action_attempt.status).toBe('success')
  expect((await latchkey.call('/devices/get', { device_id: a.deviceId })).body.device.properties.locked).toBe(true)
})

it("keeps the broker's rate guard in front of the sink: a message over the device's rate is dropped once, not stored", async ({
  defer,
}) => {
  // Scenario: a burst of 2; the third message is acknowledged (MQTT 3.1.1 has no negative PUBACK) but never reaches
  // the sink, and it is counted as dropped exactly once.
  const commits = new HeldCommits()
  const drops: string[] = []
  const broker = await embedded(defer, commits.sink, drops, 2)
  const a = await device(defer, broker.port, 'lock-a')
  for (const text of ['free-1', 'free-2', 'free-3']) await publish(a, deviceTopic('lock-a', 'state'), text)
  expect(commits.seen).toEqual(['free-1', 'free-2'])
  expect(drops).toEqual(['rate_limited'])
})
