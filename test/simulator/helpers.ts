import { randomUUID } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'
import { connectAsync, type MqttClient } from 'mqtt'
import { AckSchema, TOPIC_ROOT, deviceTopic, type Ack, type Command, type TopicKind } from '../../devices/index.js'
import { VirtualLock, type VirtualLockOptions } from '../../simulator/index.js'
import { it as base } from '../helpers/latchkey.js'

/**
 * A plain aedes broker on 127.0.0.1:0 plus an mqtt.js client playing the orchestrator: it follows every device
 * topic and records what it sees. close() ends every client, lock and server it made.
 */

export interface Received {
  topic: string
  payload: string
  retain: boolean
  at: number
}

export class Harness {
  readonly received: Received[] = []
  private readonly arrivals = new EventEmitter()
  private readonly locks: VirtualLock[] = []
  private readonly clients: MqttClient[] = []
  orchestrator!: MqttClient

  private constructor(
    readonly url: string,
    private readonly broker: Aedes,
    private readonly server: Server,
  ) {}

  static async start(options?: AedesOptions): Promise<Harness> {
    const broker = await Aedes.createBroker(options)
    const server = createServer({ noDelay: true }, broker.handle)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const harness = new Harness(`mqtt://127.0.0.1:${port}`, broker, server)
    harness.orchestrator = await harness.client('orchestrator')
    harness.orchestrator.on('message', (topic, payload, packet) => {
      const message = { topic, payload: payload.toString(), retain: packet.retain, at: Date.now() }
      harness.received.push(message)
      harness.arrivals.emit('message', message)
    })
    await harness.orchestrator.subscribeAsync(`${TOPIC_ROOT}/+/+`, { qos: 1 })
    return harness
  }

  /** A plain client with TCP_NODELAY, closed by close(). */
  async client(clientId = `observer-${randomUUID()}`): Promise<MqttClient> {
    const client = await connectAsync(this.url, { protocolVersion: 4, clientId, reconnectPeriod: 0 })
    ;(client.stream as unknown as { setNoDelay: (on: boolean) => void }).setNoDelay(true)
    this.clients.push(client)
    return client
  }

  /** A lock on this broker with a fresh device id (no auth here, any password). */
  lock(options: Partial<VirtualLockOptions> = {}): VirtualLock {
    const lock = new VirtualLock({
      url: this.url,
      deviceId: randomUUID(),
      password: 'secret',
      reconnectPeriodMs: 20,
      ...options,
    })
    this.locks.push(lock)
    return lock
  }

  async startLock(options: Partial<VirtualLockOptions> = {}): Promise<VirtualLock> {
    const lock = this.lock(options)
    await lock.start()
    return lock
  }

  /** Publishes a command (or any raw payload) to a device, QoS 1, as the orchestrator does. */
  async send(deviceId: string, payload: Command | string | Buffer): Promise<void> {
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload)
    await this.orchestrator.publishAsync(deviceTopic(deviceId, 'commands'), body, { qos: 1 })
  }

  /** Resolves with the first message (already received or still to come) that passes `match`. */
  waitFor(match: (m: Received) => boolean, timeoutMs = 5_000): Promise<Received> {
    const found = this.received.find(match)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const onMessage = (m: Received): void => {
        if (!match(m)) return
        clearTimeout(timer)
        this.arrivals.off('message', onMessage)
        resolve(m)
      }
      const timer = setTimeout(() => {
        this.arrivals.off('message', onMessage)
        reject(new Error(`no matching message within ${timeoutMs} ms`))
      }, timeoutMs)
      this.arrivals.on('message', onMessage)
    })
  }

  on(deviceId: string, kind: TopicKind): Received[] {
    return this.received.filter((m) => m.topic === deviceTopic(deviceId, kind))
  }

  /** Acks seen for one command, parsed. */
  acks(deviceId: string, commandId: string): Ack[] {
    return this.on(deviceId, 'acks')
      .map((m) => AckSchema.parse(JSON.parse(m.payload)))
      .filter((ack) => ack.command_id === commandId)
  }

  /** Waits until `count` acks of the command have arrived and returns them. */
  async waitForAcks(deviceId: string, commandId: string, count = 1): Promise<Ack[]> {
    let seen = 0
    await this.waitFor(
      (m) => m.topic === deviceTopic(deviceId, 'acks') && m.payload.includes(commandId) && ++seen >= count,
    )
    return this.acks(deviceId, commandId)
  }

  async close(): Promise<void> {
    await Promise.all(this.locks.map((lock) => lock.stop()))
    await Promise.all(this.clients.map((client) => client.endAsync(true)))
    await new Promise<void>((resolve) => this.broker.close(() => resolve()))
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** A valid command with overrides; expires 5 s from now by default. */
export function buildCommand(overrides: Partial<Command> = {}): Command {
  const now = Date.now()
  return {
    command_id: randomUUID(),
    action: 'UNLOCK_DOOR',
    issued_at: new Date(now).toISOString(),
    expires_at: new Date(now + 5_000).toISOString(),
    ...overrides,
  }
}

/** The shared fixtures of test/helpers/latchkey.ts (`defer`…) plus `mqtt`: a fresh broker + orchestrator per test. */
export const it = base.extend<{ mqtt: Harness }>({
  // Closed through `defer`, so whatever a test defers after asking for it (a fleet on it) stops first.
  mqtt: async ({ defer }, use) => {
    const harness = await Harness.start()
    defer(() => harness.close())
    await use(harness)
  },
})
