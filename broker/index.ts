import { Aedes, type Client } from 'aedes'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { canPublish, canSubscribe, type Principal, type Refusal } from './acl.js'
import { createPersistence } from './retained-index.js'

export type { Principal, Refusal } from './acl.js'

export interface BrokerOptions {
  host: string
  port: number
  /** Resolves the principal for a username/password pair, or undefined to refuse. */
  authenticate: (username: string, password: Buffer) => Promise<Principal | undefined>
  /** Every refusal lands here, with its reason, to be logged and counted. */
  onRefused: (reason: Refusal, clientId: string | undefined, detail?: string) => void
  onError?: (error: Error) => void
  /**
   * Hand every device publish (and a device's will) to the sink set with `routeDevicePublishes` before the broker
   * takes it: the device's QoS 1 PUBACK then follows the sink's promise (docs/design.md#2-puback-after-commit).
   * Publishes that arrive before a sink is set wait for it.
   */
  routeDevicePublishes?: boolean
}

/** Takes one device message; resolves once its effect is committed, rejects to leave it unacknowledged. */
export type PublishSink = (topic: string, payload: Buffer) => Promise<void>

export interface Broker {
  readonly port: number
  /** Closes the live session of a client id, if any (device deleted or credentials rotated). */
  disconnect(clientId: string): void
  connectedClients(): number
  /** Publishes from inside the process, no socket involved; resolves once the broker has taken the message. */
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>
  /**
   * Sets the sink of device publishes (with `routeDevicePublishes`). A device's messages reach it one at a time, in
   * order; different devices' messages concurrently. A rejection closes the device's connection without PUBACK, so
   * the device publishes the message again after reconnecting.
   */
  setPublishSink(sink: PublishSink): void
  close(): Promise<void>
}

interface AuthenticatedClient extends Client {
  latchkeyPrincipal?: Principal
}

/**
 * The embedded broker: aedes on a TCP server with TCP_NODELAY (a QoS 1 round trip drops from ~88 ms to ~0.4 ms,
 * docs/mqtt.md), authentication and the per-device ACL of docs/mqtt.md#access-control passed in as functions.
 */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const clients = new Map<string, Client>()
  const router = createRouter()
  const aedes = await Aedes.createBroker({
    persistence: createPersistence(),
    authenticate(client, username, password, done) {
      const refuse = (reason: Refusal, code: number) => {
        options.onRefused(reason, client.id, username)
        done(Object.assign(new Error(reason), { returnCode: code }), false)
      }
      if (!username || !password) return refuse('anonymous', 4)
      // [MQTT-3.1.3-8]: a refused connect gets CONNACK 2 (identifier rejected) for a client id that is not the user.
      if (client.id !== username) return refuse('client_id_mismatch', 2)
      options.authenticate(username, password).then(
        (principal) => {
          if (!principal) return refuse('bad_credentials', 4)
          ;(client as AuthenticatedClient).latchkeyPrincipal = principal
          done(null, true)
        },
        (error: unknown) => {
          options.onError?.(error as Error)
          refuse('bad_credentials', 3)
        },
      )
    },
    authorizePublish(client, packet, done) {
      const principal = (client as AuthenticatedClient | null)?.latchkeyPrincipal
      // client is null only for a will published after its client is gone; it was authorised when set.
      if (!client) return done(null)
      const refusal = principal ? canPublish(principal, packet.topic) : 'not_allowed'
      if (refusal) {
        options.onRefused(refusal, client.id, `publish ${packet.topic}`)
        return done(new Error(refusal))
      }
      if (!options.routeDevicePublishes || principal?.kind !== 'device') return done(null)
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      router.route(client.id, packet.topic, payload).then(
        () => done(null),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      )
    },
    authorizeSubscribe(client, subscription, done) {
      const principal = (client as AuthenticatedClient).latchkeyPrincipal
      const refusal = principal ? canSubscribe(principal, subscription.topic) : 'not_allowed'
      if (refusal) {
        options.onRefused(refusal, client.id, `subscribe ${subscription.topic}`)
        // A negated subscription: SUBACK 0x80 for this filter, the connection stays up.
        return done(null, null)
      }
      done(null, subscription)
    },
  })
  aedes.on('client', (client) => clients.set(client.id, client))
  aedes.on('clientDisconnect', (client) => {
    if (clients.get(client.id) === client) clients.delete(client.id)
  })
  aedes.on('clientError', () => {
    // Refusals are reported through onRefused; a socket error of one client concerns nobody else.
  })
  aedes.on('connectionError', () => {})

  const server: Server = createServer({ noDelay: true }, aedes.handle as unknown as (socket: Socket) => void)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.on('error', (error) => options.onError?.(error))

  return {
    port: (server.address() as AddressInfo).port,
    disconnect(clientId) {
      clients.get(clientId)?.close()
    },
    connectedClients: () => aedes.connectedClients,
    publish(topic, payload, qos) {
      return new Promise<void>((resolve, reject) =>
        aedes.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (error) =>
          error ? reject(error) : resolve(),
        ),
      )
    },
    setPublishSink: (sink) => router.setSink(sink),
    async close() {
      router.close()
      for (const client of clients.values()) client.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    },
  }
}

/**
 * Device publishes in, one chain per device: each waits for the previous one of its device (so `state` then `ack`
 * commit in the order sent), and for the sink to be set. The map holds only devices with a message in progress.
 */
function createRouter() {
  const chains = new Map<string, Promise<void>>()
  let sink: PublishSink | undefined
  let closed = false
  let sinkSet: () => void = () => {}
  const ready = new Promise<void>((resolve) => (sinkSet = resolve))

  return {
    setSink(next: PublishSink) {
      sink = next
      sinkSet()
    },
    close() {
      closed = true
      sinkSet()
    },
    route(key: string, topic: string, payload: Buffer): Promise<void> {
      const previous = chains.get(key) ?? ready
      // A failed predecessor fails this one too: its device reconnects and resends both, in order.
      const current = previous.then(() => {
        if (closed || !sink) throw new Error('broker closing')
        return sink(topic, payload)
      })
      chains.set(key, current)
      const forget = () => {
        if (chains.get(key) === current) chains.delete(key)
      }
      current.then(forget, forget)
      return current
    },
  }
}
