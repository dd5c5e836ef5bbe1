import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { connect as connectTcp, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { describe, expect, test } from 'vitest'
import { createBroker, MAX_CONNECT_BYTES, type Broker, type BrokerLimits } from '../../broker/index.js'
import { deviceTopic } from '../../devices/index.js'
import { connectRaw, publish, subscribe } from '../helpers/mqtt.js'

/**
 * The embedded broker's own limits (docs/mqtt.md, "Limits"), driven through real sockets against createBroker with
 * a hand-moved clock, so every bound is checked by counting, never by timing.
 */

const PASSWORD = 'device-password'
const SERVICE = 'service'
const MIB = 1024 * 1024

interface TestBroker {
  broker: Broker
  url: string
  refusals: Array<{ reason: string; detail: string | undefined }>
  drops: Array<{ reason: string; detail: string | undefined }>
  clock: { now: number }
  /** A device or service client, closed at teardown. */
  client: (username: string, password?: string) => Promise<MqttClient>
  /** A raw TCP socket to the broker, closed at teardown. */
  socket: () => Promise<Socket>
}

const defaults: BrokerLimits = {
  maxPacketBytes: 20_480,
  devicePublishPerSecond: 10,
  devicePublishBurst: 5,
  authFailuresPerMinute: 3,
}

const it = test.extend<{
  start: (limits?: Partial<BrokerLimits>, plaintext?: boolean) => Promise<TestBroker>
}>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  start: async ({}, use) => {
    const brokers: Broker[] = []
    const clients: MqttClient[] = []
    const sockets: Socket[] = []
    await use(async (limits = {}, plaintext = true) => {
      const refusals: TestBroker['refusals'] = []
      const drops: TestBroker['drops'] = []
      const clock = { now: Date.parse('2026-01-01T00:00:00Z') }
      const broker = await createBroker({
        host: '127.0.0.1',
        port: 0,
        plaintext,
        limits: { ...defaults, ...limits },
        now: () => clock.now,
        async authenticate(username, password) {
          if (password.toString() !== PASSWORD) return undefined
          return username === SERVICE ? { kind: 'service' } : { kind: 'device', deviceId: username }
        },
        onRefused: (reason, _clientId, detail) => refusals.push({ reason, detail }),
        onDropped: (reason, _clientId, detail) => drops.push({ reason, detail }),
      })
      brokers.push(broker)
      const url = `mqtt://127.0.0.1:${broker.port}`
      return {
        broker,
        url,
        refusals,
        drops,
        clock,
        async client(username, password = PASSWORD) {
          const client = await connectRaw(url, { clientId: username, username, password })
          clients.push(client)
          return client
        },
        async socket() {
          const socket = connectTcp(broker.port, '127.0.0.1')
          socket.on('error', () => {})
          sockets.push(socket)
          await once(socket, 'connect')
          return socket
        },
      }
    })
    for (const socket of sockets) socket.destroy()
    for (const client of clients) client.end(true)
    for (const broker of brokers) await broker.close()
  },
})

/** MQTT's remaining-length varint. */
function varint(length: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = length % 128
    length = Math.floor(length / 128)
    if (length > 0) byte |= 0x80
    bytes.push(byte)
  } while (length > 0)
  return Buffer.from(bytes)
}

/**
 * Writes `header`, then zeros in 64 KiB chunks, honouring back-pressure, until the peer closes the connection or
 * `limit` bytes are written. Returns what was written and whether the peer closed.
 */
async function streamUntilClosed(socket: Socket, header: Buffer, limit: number) {
  let closed = false
  // A reset arrives as 'error' then 'close'; only the close matters here.
  socket.on('error', () => {})
  const gone = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true
      resolve()
    }),
  )
  const drained = () => new Promise<void>((resolve) => socket.once('drain', resolve))
  const chunk = Buffer.alloc(64 * 1024)
  let written = 0
  socket.write(header)
  while (!closed && written < limit && !socket.destroyed) {
    written += chunk.length
    if (!socket.write(chunk)) await Promise.race([drained(), gone])
  }
  if (!closed) socket.destroy()
  return { written, closed }
}

/** The server-side byte count the frame guard reports when it closes a connection. */
function bytesRead(detail: string | undefined): number {
  const match = /(\d+) bytes read/.exec(detail ?? '')
  if (!match) throw new Error(`no byte count in ${detail}`)
  return Number(match[1])
}

const connectPacket = (username: string, password = PASSWORD) =>
  mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId: username,
    username,
    password: Buffer.from(password),
  })

describe('packet size limits', () => {
  it('closes an unauthenticated connection whose CONNECT claims 200 MB, having read almost nothing', async ({
    start,
  }) => {
    // Scenario: no credentials, a CONNECT header announcing 200 MB, then a stream of bytes. The broker closes the
    // connection at the header; it reads at most one socket buffer, not the 200 MB.
    const b = await start()
    const socket = await b.socket()
    const result = await streamUntilClosed(socket, Buffer.concat([Buffer.from([0x10]), varint(200 * MIB)]), 64 * MIB)
    expect(result.closed).toBe(true)
    // What the kernel buffers between the two ends, not what the broker holds.
    expect(result.written).toBeLessThan(32 * MIB)
    expect(b.refusals.map((r) => r.reason)).toEqual(['connect_too_large'])
    expect(bytesRead(b.refusals[0]?.detail)).toBeLessThan(256 * 1024)
  })

  it('closes a connection whose first packet is not a CONNECT', async ({ start }) => {
    // Scenario: a PUBLISH claiming 200 MB before any CONNECT → closed at its first byte.
    const b = await start()
    const socket = await b.socket()
    const result = await streamUntilClosed(socket, Buffer.concat([Buffer.from([0x30]), varint(200 * MIB)]), 64 * MIB)
    expect(result.closed).toBe(true)
    expect(b.refusals.map((r) => r.reason)).toEqual(['not_connect'])
    expect(bytesRead(b.refusals[0]?.detail)).toBeLessThan(256 * 1024)
  })

  it('refuses a CONNECT larger than the pre-authentication limit', async ({ start }) => {
    // Scenario: a well-formed CONNECT with a 10 KiB password → closed before authentication is even tried.
    const b = await start()
    const socket = await b.socket()
    const packet = connectPacket(randomUUID(), 'x'.repeat(10 * 1024))
    expect(packet.length).toBeGreaterThan(MAX_CONNECT_BYTES)
    const result = await streamUntilClosed(socket, packet, 64 * MIB)
    expect(result.closed).toBe(true)
    expect(b.refusals.map((r) => r.reason)).toEqual(['connect_too_large'])
  })

  it('closes an authenticated device announcing a PUBLISH over the packet limit, before buffering it', async ({
    start,
  }) => {
    // Scenario: a device with valid credentials starts a 200 MB PUBLISH on its own topic → closed at the header.
    const b = await start()
    const device = await b.client(randomUUID())
    const socket = device.stream as unknown as Socket
    const topic = Buffer.from(deviceTopic(device.options.clientId as string, 'state'))
    const header = Buffer.concat([
      Buffer.from([0x30]),
      varint(200 * MIB),
      Buffer.from([topic.length >> 8, topic.length & 0xff]),
      topic,
    ])
    const result = await streamUntilClosed(socket, header, 64 * MIB)
    expect(result.closed).toBe(true)
    expect(b.refusals.map((r) => r.reason)).toEqual(['packet_too_large'])
    expect(bytesRead(b.refusals[0]?.detail)).toBeLessThan(256 * 1024)
  })

  it('passes packets up to the limit and packets pipelined behind the CONNECT', async ({ start }) => {
    // Scenario: CONNECT, SUBSCRIBE and a 16 KiB PUBLISH written in one go before CONNACK → all are served once
    // the connection is accepted (CONNACK first; the broker handles the two others concurrently).
    const b = await start()
    const deviceId = randomUUID()
    const socket = await b.socket()
    const packets: Array<{ cmd: string; returnCode?: number; granted?: number[] }> = []
    const parser = mqttPacket.parser()
    parser.on('packet', (packet) => packets.push(packet as (typeof packets)[number]))
    socket.on('data', (data) => parser.parse(data))
    socket.write(
      Buffer.concat([
        connectPacket(deviceId),
        mqttPacket.generate({
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: [{ topic: deviceTopic(deviceId, 'commands'), qos: 1 }],
        }),
        mqttPacket.generate({
          cmd: 'publish',
          topic: deviceTopic(deviceId, 'events'),
          payload: Buffer.alloc(16 * 1024, 0x20),
          qos: 1,
          messageId: 2,
          retain: false,
          dup: false,
        }),
      ]),
    )
    await expect.poll(() => packets.length, { timeout: 5_000 }).toBe(3)
    expect(packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(
      packets
        .slice(1)
        .map((p) => p.cmd)
        .sort(),
    ).toEqual(['puback', 'suback'])
    expect(packets.find((p) => p.cmd === 'suback')?.granted).toEqual([1])
    expect(b.refusals).toEqual([])
  })
})

describe('retained messages', () => {
  it('drops a 50 MB retained state instead of keeping it, and counts it', async ({ start }) => {
    // Scenario: with packets allowed up to 64 MiB, a device parks 50 MB retained on its own `state` → PUBACKed,
    // dropped as oversize, nothing retained; a normal retained state is kept.
    const b = await start({ maxPacketBytes: 64 * MIB })
    const deviceId = randomUUID()
    const device = await b.client(deviceId)
    await publish(device, deviceTopic(deviceId, 'state'), Buffer.alloc(50 * MIB, 0x20), true)
    expect(b.drops.map((d) => d.reason)).toEqual(['oversize'])
    expect(b.broker.retainedBytes()).toBe(0)
    await publish(device, deviceTopic(deviceId, 'state'), JSON.stringify({ locked: true }), true)
    expect(b.broker.retainedBytes()).toBe(JSON.stringify({ locked: true }).length)
    expect(device.connected).toBe(true)
  })
})

describe('per-device publish rate', () => {
  it('drops what a device publishes beyond its bucket, not what others publish', async ({ start }) => {
    // Scenario: burst 5, 10/s, clock frozen. Device A publishes 12 events → 5 routed, 7 dropped and counted.
    // Device B still gets its event through; after 100 ms A has one token again.
    const b = await start()
    const observer = await b.client(SERVICE)
    const seen: string[] = []
    observer.on('message', (topic, payload) => seen.push(`${topic.split('/')[3]}:${payload.toString()}`))
    expect(await subscribe(observer, 'latchkey/v1/devices/+/events')).toBe(1)
    const a = randomUUID()
    const chatty = await b.client(a)
    for (let i = 0; i < 12; i++) await publish(chatty, deviceTopic(a, 'events'), `a${i}`)
    expect(b.drops.filter((d) => d.reason === 'rate_limited')).toHaveLength(7)
    const other = randomUUID()
    const quiet = await b.client(other)
    await publish(quiet, deviceTopic(other, 'events'), 'b0')
    b.clock.now += 100
    await publish(chatty, deviceTopic(a, 'events'), 'a-after')
    await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(7)
    expect(seen.filter((s) => s.startsWith(a))).toEqual([0, 1, 2, 3, 4].map((i) => `${a}:a${i}`).concat(`${a}:a-after`))
    expect(seen).toContain(`${other}:b0`)
    expect(chatty.connected).toBe(true)
  })

  it('never drops the offline will of a device over its rate', async ({ start }) => {
    // Scenario: a device spends its whole bucket, then its socket dies → its `offline` will is still routed.
    const b = await start()
    const observer = await b.client(SERVICE)
    const statuses: string[] = []
    observer.on('message', (_topic, payload) => statuses.push(payload.toString()))
    expect(await subscribe(observer, 'latchkey/v1/devices/+/status')).toBe(1)
    const id = randomUUID()
    const device = await connectRaw(b.url, {
      clientId: id,
      username: id,
      password: PASSWORD,
      will: { topic: deviceTopic(id, 'status'), payload: Buffer.from('offline'), qos: 1, retain: true },
    })
    for (let i = 0; i < 6; i++) await publish(device, deviceTopic(id, 'status'), 'online')
    device.stream.destroy()
    await expect.poll(() => statuses.at(-1), { timeout: 5_000 }).toBe('offline')
    expect(statuses).toEqual(['online', 'online', 'online', 'online', 'online', 'offline'])
  })
})

describe('failed logins', () => {
  it('throttles an address after its failed logins, whatever it tries next, until the bucket refills', async ({
    start,
  }) => {
    // Scenario: 3 failures per minute allowed. Three bad passwords → bad_credentials; the fourth connect, even with
    // the right password, is refused as throttled; 20 s later one more attempt is allowed and succeeds.
    const b = await start()
    const id = randomUUID()
    for (let i = 0; i < 3; i++) await expect(b.client(id, 'wrong-password')).rejects.toThrow()
    await expect(b.client(id)).rejects.toThrow()
    expect(b.refusals.map((r) => r.reason)).toEqual([
      'bad_credentials',
      'bad_credentials',
      'bad_credentials',
      'throttled',
    ])
    b.clock.now += 20_000
    const device = await b.client(id)
    expect(device.connected).toBe(true)
  })
})

describe('plaintext off', () => {
  it('keeps the plain port for the orchestrator alone', async ({ start }) => {
    // Scenario: plaintext off → a device with valid credentials is refused on the plain port; the service connects.
    const b = await start({}, false)
    await expect(b.client(randomUUID())).rejects.toThrow()
    expect(b.refusals.map((r) => r.reason)).toEqual(['plaintext_disabled'])
    expect((await b.client(SERVICE)).connected).toBe(true)
  })
})
