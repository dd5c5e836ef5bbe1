import { describe, expect } from 'vitest'
import { DeviceEventSchema, DeviceStateSchema, MAX_PAYLOAD_BYTES, deviceTopic } from '../../devices/index.js'
import { Harness, buildCommand, it } from './helpers.js'

describe('VirtualLock connection', () => {
  it('publishes retained online status and state on connect', async ({ mqtt }) => {
    // Scenario: a lock starts; a client subscribing afterwards gets its retained status and state.
    const lock = await mqtt.startLock({ initialState: { locked: false, battery_level: 0.8 } })
    const late = await mqtt.client()
    const retained: Array<{ topic: string; payload: string; retain: boolean }> = []
    late.on('message', (topic, payload, packet) =>
      retained.push({ topic, payload: payload.toString(), retain: packet.retain }),
    )
    await late.subscribeAsync(`${deviceTopic(lock.deviceId, 'status').replace(/status$/, '+')}`, { qos: 1 })
    await expect.poll(() => retained.length).toBe(2)
    const status = retained.find((m) => m.topic === deviceTopic(lock.deviceId, 'status'))
    const state = retained.find((m) => m.topic === deviceTopic(lock.deviceId, 'state'))
    expect(status).toEqual({ topic: deviceTopic(lock.deviceId, 'status'), payload: 'online', retain: true })
    expect(state?.retain).toBe(true)
    expect(DeviceStateSchema.parse(JSON.parse(state?.payload ?? ''))).toMatchObject({
      locked: false,
      battery_level: 0.8,
    })
    expect(lock.connected).toBe(true)
  })

  it('fires its offline will when killed abruptly', async ({ mqtt }) => {
    // Scenario: the lock loses power (socket destroyed, no DISCONNECT); the broker publishes the will.
    const lock = await mqtt.startLock()
    const disconnected = lock.next('disconnected')
    lock.kill()
    await disconnected
    const offline = await mqtt.waitFor(
      (m) => m.topic === deviceTopic(lock.deviceId, 'status') && m.payload === 'offline',
    )
    expect(offline.payload).toBe('offline')
    expect(lock.connected).toBe(false)
  })

  it('publishes retained offline on a clean stop', async ({ mqtt }) => {
    // Scenario: stop() announces offline itself before disconnecting.
    const lock = await mqtt.startLock()
    await lock.stop()
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'status') && m.payload === 'offline')
    expect(lock.counters.disconnects).toBe(1)
  })

  it('rejects start() with a clear error when the broker refuses the credentials', async () => {
    // Scenario: a broker accepting only the right password; start() with a wrong one fails instead of retrying.
    const strict = await Harness.start({
      authenticate: (_client, username, password, done) =>
        done(null, username === undefined || password?.toString() === 'right'),
    })
    try {
      await expect(strict.lock({ password: 'wrong' }).start()).rejects.toThrow(/broker refused the connection/)
      await expect(strict.lock({ password: 'right' }).start()).resolves.toBeUndefined()
    } finally {
      await strict.close()
    }
  })

  it('gets QoS 1 commands sent while it was briefly disconnected', async ({ mqtt }) => {
    // Scenario: a network blip; a command published during it is delivered from the broker's session on reconnect.
    const lock = await mqtt.startLock()
    const reconnected = lock.next('connected')
    lock.flap(150)
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'status') && m.payload === 'offline')
    const command = buildCommand()
    await mqtt.send(lock.deviceId, command)
    await reconnected
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.status).toBe('success')
    expect(lock.counters.connects).toBe(2)
  })
  it('flaps on its own with the flap knob', async ({ mqtt }) => {
    // Scenario: flap every 50 ms for 20 ms: the lock drops (will fires) and comes back announcing online again.
    const lock = mqtt.lock({ behaviour: { flap: { everyMs: 50, downMs: 20 } } })
    await lock.start()
    await lock.next('disconnected')
    await lock.next('connected')
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'status') && m.payload === 'offline')
    expect(lock.counters.connects).toBeGreaterThanOrEqual(2)
    await lock.stop()
  })

  it('picks up a command queued while it was powered off once started again', async ({ mqtt }) => {
    // Scenario: kill, command sent to the dead lock, start again: the persistent session delivers it.
    const lock = await mqtt.startLock()
    lock.kill()
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'status') && m.payload === 'offline')
    const command = buildCommand()
    await mqtt.send(lock.deviceId, command)
    await lock.start()
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.status).toBe('success')
  })
})

describe('VirtualLock manual actions', () => {
  it('publishes state and an event for a manual unlock', async ({ mqtt }) => {
    // Scenario: someone turns the thumb-turn; the lock reports the new state and a lock.unlocked event.
    const lock = await mqtt.startLock()
    await lock.manualUnlock('keycode')
    const event = await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'events'))
    expect(DeviceEventSchema.parse(JSON.parse(event.payload))).toMatchObject({
      type: 'lock.unlocked',
      method: 'keycode',
    })
    const states = mqtt.on(lock.deviceId, 'state').map((m) => DeviceStateSchema.parse(JSON.parse(m.payload)))
    expect(states.at(-1)?.locked).toBe(false)
    expect(lock.state.locked).toBe(false)
  })

  it('reports access denied, tamper and state changes', async ({ mqtt }) => {
    // Scenario: each reporting helper produces its event or state message.
    const lock = await mqtt.startLock()
    await lock.reportAccessDenied()
    await lock.reportTamper()
    await lock.setBattery(0.3)
    await lock.setDoorOpen(true)
    await lock.setJammed(true)
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'state') && m.payload.includes('"jammed":true'))
    const types = mqtt.on(lock.deviceId, 'events').map((m) => DeviceEventSchema.parse(JSON.parse(m.payload)).type)
    expect(types).toEqual(['lock.access_denied', 'device.tampered'])
    const last = mqtt.on(lock.deviceId, 'state').at(-1)
    expect(JSON.parse(last?.payload ?? '')).toMatchObject({ battery_level: 0.3, door_open: true, jammed: true })
    expect(lock.counters.eventsSent).toBe(2)
    expect(() => lock.setBattery(1.5)).toThrow(RangeError)
  })

  it('emits manual events at the configured rate', async ({ mqtt }) => {
    // Scenario: manualEventsPerMinute set very high makes the lock toggle itself within milliseconds.
    const lock = mqtt.lock({ behaviour: { manualEventsPerMinute: 60_000 } })
    const event = lock.next('event')
    await lock.start()
    const [published] = await event
    expect(['lock.locked', 'lock.unlocked']).toContain(published.type)
  })
})

describe('VirtualLock garbage input', () => {
  it('ignores and counts malformed commands, then still works', async ({ mqtt }) => {
    // Scenario: non-JSON, schema-invalid and oversize payloads are dropped; a valid command afterwards succeeds.
    const lock = await mqtt.startLock()
    await mqtt.send(lock.deviceId, 'not json')
    await mqtt.send(lock.deviceId, JSON.stringify({ command_id: 'nope', action: 'OPEN_SESAME' }))
    await mqtt.send(lock.deviceId, Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20))
    const command = buildCommand()
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.status).toBe('success')
    expect(lock.counters).toMatchObject({ invalidReceived: 3, commandsReceived: 1 })
  })
})
