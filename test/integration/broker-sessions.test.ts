import { randomUUID } from 'node:crypto'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { describe, expect, test } from 'vitest'
import { createBroker, releaseConnectPacket, type Broker } from '../../broker/index.js'
import { deviceTopic } from '../../devices/index.js'
import { connectRaw, end, publish, subscribe } from '../helpers/mqtt.js'

/**
 * The embedded broker's own message bus and session store (broker/topic-emitter.ts, broker/session-store.ts), through
 * real sockets: persistent sessions and QoS 1 to a lock online and offline, wildcard subscribers, retained messages
 * and wills (docs/mqtt.md).
 */

const PASSWORD = 'device-password'
const SERVICE = 'service'

interface TestBroker {
  broker: Broker
  /** A client, ended at teardown. */
  client: (username: string, options?: IClientOptions) => Promise<MqttClient>
}

const it = test.extend<{ start: () => Promise<TestBroker> }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  start: async ({}, use) => {
    const brokers: Broker[] = []
    const clients: MqttClient[] = []
    await use(async () => {
      const broker = await createBroker({
        host: '127.0.0.1',
        port: 0,
        limits: {
          maxPacketBytes: 20_480,
          devicePublishPerSecond: 100,
          devicePublishBurst: 100,
          authFailuresPerMinute: 10,
        },
        async authenticate(username, password) {
          if (password.toString() !== PASSWORD) return undefined
          return username === SERVICE ? { kind: 'service' } : { kind: 'device', deviceId: username }
        },
        onRefused: () => {},
        onDropped: () => {},
      })
      brokers.push(broker)
      const url = `mqtt://127.0.0.1:${broker.port}`
      return {
        broker,
        async client(username, options = {}) {
          const client = await connectRaw(url, { clientId: username, username, password: PASSWORD, ...options })
          clients.push(client)
          return client
        },
      }
    })
    for (const client of clients) client.end(true)
    for (const broker of brokers) await broker.close()
  },
})

/** Messages a client receives, as `topic payload`. */
function inbox(client: MqttClient): string[] {
  const messages: string[] = []
  client.on('message', (topic, payload) => messages.push(`${topic} ${payload.toString()}`))
  return messages
}

describe('embedded broker sessions', () => {
  it('delivers a QoS 1 command to an online lock, and queues one for a lock away on a persistent session', async ({
    start,
  }) => {
    // Scenario: a lock (clean session false) subscribes its commands; one command while online; it disconnects; a
    // second command; it reconnects without subscribing again and receives the second, once.
    const b = await start()
    const id = randomUUID()
    const commands = deviceTopic(id, 'commands')
    const first = await b.client(id, { clean: false })
    const firstInbox = inbox(first)
    expect(await subscribe(first, commands)).toBe(1)
    await b.broker.publish(commands, Buffer.from('one'), 1)
    await expect.poll(() => firstInbox).toEqual([`${commands} one`])
    await end(first)
    await expect.poll(() => b.broker.connectedClients()).toBe(0)

    await b.broker.publish(commands, Buffer.from('two'), 1)
    const again = await b.client(id, { clean: false })
    const againInbox = inbox(again)
    await expect.poll(() => againInbox).toEqual([`${commands} two`])
    // Another lock's command does not reach it.
    await b.broker.publish(deviceTopic(randomUUID(), 'commands'), Buffer.from('other'), 1)
    await b.broker.publish(commands, Buffer.from('three'), 1)
    await expect.poll(() => againInbox).toEqual([`${commands} two`, `${commands} three`])
  })

  it('loses a command published while a clean-session lock is away', async ({ start }) => {
    const b = await start()
    const id = randomUUID()
    const commands = deviceTopic(id, 'commands')
    const lock = await b.client(id, { clean: true })
    expect(await subscribe(lock, commands)).toBe(1)
    await end(lock)
    await expect.poll(() => b.broker.connectedClients()).toBe(0)
    await b.broker.publish(commands, Buffer.from('lost'), 1)
    const again = await b.client(id, { clean: true })
    const messages = inbox(again)
    expect(await subscribe(again, commands)).toBe(1)
    await b.broker.publish(commands, Buffer.from('next'), 1)
    await expect.poll(() => messages).toEqual([`${commands} next`])
  })

  it('passes device messages to a wildcard subscriber, retained ones to a later subscriber, and the will', async ({
    start,
  }) => {
    // Scenario: the service watches `+/status`; a lock with an `offline` will publishes retained `online` and state;
    // a second service client subscribing later gets the retained status of that lock; the lock's socket dies.
    const b = await start()
    const watcher = await b.client(SERVICE)
    const watched = inbox(watcher)
    expect(await subscribe(watcher, 'latchkey/v1/devices/+/status')).toBe(1)
    const id = randomUUID()
    const status = deviceTopic(id, 'status')
    const lock = await b.client(id, {
      clean: false,
      will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true },
    })
    await publish(lock, status, 'online', true)
    await publish(lock, deviceTopic(id, 'state'), '{"locked":true}', true)
    await expect.poll(() => watched).toEqual([`${status} online`])

    const late = await b.client(`${SERVICE}`, { clientId: SERVICE })
    const lateInbox = inbox(late)
    expect(await subscribe(late, 'latchkey/v1/devices/+/state')).toBe(1)
    await expect.poll(() => lateInbox).toEqual([`${deviceTopic(id, 'state')} {"locked":true}`])
    expect(b.broker.retainedBytes()).toBe('online'.length + '{"locked":true}'.length)

    lock.stream.destroy()
    // `late` took over the service client id, so `watcher` is gone: subscribe again for the will.
    expect(await subscribe(late, 'latchkey/v1/devices/+/status')).toBe(1)
    await expect.poll(() => lateInbox.filter((m) => m.startsWith(status))).toContain(`${status} offline`)
    expect(b.broker.retainedBytes()).toBe('offline'.length + '{"locked":true}'.length)
  })
})

describe('the CONNECT packet after CONNACK', () => {
  it('is no longer held by the parser, which goes on parsing the packets after it', () => {
    // Scenario: mqtt-packet's parser reads a CONNECT with password and will, the broker releases it, then a
    // SUBSCRIBE and a PUBLISH are parsed.
    const parser = mqttPacket.parser()
    const packets: Array<{ cmd: string }> = []
    parser.on('packet', (packet: { cmd: string }) => packets.push(packet))
    const connect = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: false,
      clientId: 'lock-1',
      keepalive: 30,
      username: 'lock-1',
      password: Buffer.from('secret'),
      will: { topic: 'latchkey/v1/devices/lock-1/status', payload: Buffer.from('offline'), qos: 1, retain: true },
    })
    parser.parse(connect)
    const settings = () => (parser as unknown as { settings: Record<string, unknown> }).settings
    expect(settings().password).toBeDefined()

    releaseConnectPacket({ _parser: parser } as never)
    expect(settings()).toEqual({ protocolVersion: 4, bridgeMode: false })

    parser.parse(
      mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/commands', qos: 1 }] }),
    )
    parser.parse(
      mqttPacket.generate({
        cmd: 'publish',
        topic: 'a/state',
        payload: Buffer.from('{}'),
        qos: 1,
        messageId: 2,
        dup: false,
        retain: false,
      }),
    )
    expect(packets.map((p) => p.cmd)).toEqual(['connect', 'subscribe', 'publish'])
  })
})
