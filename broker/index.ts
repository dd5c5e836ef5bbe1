import { Aedes, type Client, type PublishPacket } from 'aedes'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type SecureContextOptions } from 'node:tls'
import { MAX_PAYLOAD_BYTES } from '../devices/index.js'
import { canPublish, canSubscribe, type Principal, type Refusal } from './acl.js'
import { acceptFrames, guardFrames, type FrameViolation } from './frame-guard.js'
import { SessionStore } from './session-store.js'
import { TokenBuckets } from './token-buckets.js'
import { TopicEmitter } from './topic-emitter.js'

export type { Principal, Refusal } from './acl.js'
export { MAX_CONNECT_BYTES } from './frame-guard.js'

/** Why a device's publish was acknowledged but not passed on (docs/mqtt.md, "Limits"). */
export type Drop = 'oversize' | 'rate_limited'

export interface BrokerLimits {
  /** Largest packet read from an accepted client; larger ones close the connection before they are buffered. */
  maxPacketBytes: number
  /** Token bucket per device: sustained messages per second, and the burst above it. */
  devicePublishPerSecond: number
  devicePublishBurst: number
  /** Failed logins per client address per minute before further connects from it are refused. */
  authFailuresPerMinute: number
}

export interface BrokerTls {
  port: number
  /** PEM certificate chain and key; replaced later by setSecureContext. */
  context: SecureContextOptions
}

export interface BrokerOptions {
  host: string
  port: number
  /**
   * Serve devices on the plain port (default true). When false the plain port listens on loopback and admits the
   * service principal only: the orchestrator's own connection.
   */
  plaintext?: boolean
  /** MQTT over TLS on its own port, for devices. */
  tls?: BrokerTls
  limits: BrokerLimits
  /** Milliseconds, for the token buckets (default Date.now). */
  now?: () => number
  /** Resolves the principal for a username/password pair, or undefined to refuse. */
  authenticate: (username: string, password: Buffer) => Promise<Principal | undefined>
  /** Every refusal lands here, with its reason, to be logged and counted. */
  onRefused: (reason: Refusal, clientId: string | undefined, detail?: string) => void
  /** Every dropped publish lands here, with its reason, to be counted. */
  onDropped: (reason: Drop, clientId: string, detail?: string) => void
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
  /** The plain MQTT port (loopback only when plaintext is off). */
  readonly port: number
  /** The MQTT over TLS port, when TLS is on. */
  readonly tlsPort: number | undefined
  /** Swaps the TLS certificate for new connections; connected clients keep theirs. */
  setSecureContext(context: SecureContextOptions): void
  /** Closes the live session of a client id, if any (device deleted or credentials rotated). */
  disconnect(clientId: string): void
  connectedClients(): number
  /** Publishes from inside the process, no socket involved; resolves once the broker has taken the message. */
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>
  /**
   * Sets the sink of device publishes (with `routeDevicePublishes`). A device's messages reach it as they arrive, in
   * order, without waiting for each other: the sink must take its place in the write order before it yields. Each
   * is acknowledged only after the device's previous one, and fails with it; different devices' messages are
   * independent. A rejection closes the device's connection without PUBACK, so the device publishes the message
   * again after reconnecting.
   */
  setPublishSink(sink: PublishSink): void
  /** Payload bytes held as retained messages. */
  retainedBytes(): number
  close(): Promise<void>
}

interface AuthenticatedClient extends Client {
  latchkeyPrincipal?: Principal
}

/** Messages the broker delivers at once; the rest queue (aedes' default). */
const MQ_CONCURRENCY = 100

/** Set on sockets of the plain port while it is reserved to the orchestrator (plaintext off). */
const serviceOnly = new WeakSet<Socket>()

function payloadLength(packet: PublishPacket): number {
  const payload = packet.payload as Buffer | string
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
}

/**
 * The embedded broker: aedes on a TCP server with TCP_NODELAY (a QoS 1 round trip drops from ~88 ms to ~0.4 ms,
 * docs/performance.md), optionally MQTT over TLS on a second port, authentication and the per-device ACL of
 * docs/mqtt.md#access-control passed in as functions, and the limits of docs/mqtt.md ("Limits"): bounded packets, a publish rate
 * per device, and a throttle on failed logins per client address.
 */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const now = options.now ?? Date.now
  const { limits } = options
  const clients = new Map<string, Client>()
  const router = createRouter()
  const verdicts = new WeakMap<object, boolean>()
  const publishBuckets = new TokenBuckets(limits.devicePublishPerSecond, limits.devicePublishBurst)
  const failedLogins = new TokenBuckets(limits.authFailuresPerMinute / 60, limits.authFailuresPerMinute)
  const addressOf = (client: Client) => (client.conn as Partial<Socket>).remoteAddress ?? 'unknown'

  // Both through aedes' own options, laid out for many idle locks (docs/performance.md#idle-lock-memory).
  const persistence = new SessionStore()
  const aedes = await Aedes.createBroker({
    persistence,
    mq: new TopicEmitter({ concurrency: MQ_CONCURRENCY }),
    authenticate(client, username, password, done) {
      const address = addressOf(client)
      const refuse = (reason: Refusal, code: number) => {
        // Refusals that are a guess at a secret use up the address's allowance.
        if (reason === 'anonymous' || reason === 'bad_credentials') failedLogins.take(address, now())
        options.onRefused(reason, client.id, username)
        done(Object.assign(new Error(reason), { returnCode: code }), false)
      }
      // Before any check, so a throttled address learns nothing about the secrets it tries.
      if (!failedLogins.available(address, now())) return refuse('throttled', 3)
      if (!username || !password) return refuse('anonymous', 4)
      // [MQTT-3.1.3-8]: a refused connect gets CONNACK 2 (identifier rejected) for a client id that is not the user.
      if (client.id !== username) return refuse('client_id_mismatch', 2)
      options.authenticate(username, password).then(
        (principal) => {
          if (!principal) return refuse('bad_credentials', 4)
          if (principal.kind === 'device' && serviceOnly.has(client.conn as Socket)) {
            return refuse('plaintext_disabled', 5)
          }
          // A device's id is its client id: the principal shares that string rather than hold a copy per lock.
          ;(client as AuthenticatedClient).latchkeyPrincipal =
            principal.kind === 'device' && principal.deviceId === client.id
              ? { kind: 'device', deviceId: client.id }
              : principal
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
      // The payload and rate guard runs here, before the sink, and its verdict is kept for the publish below.
      const admitted = admit(packet as PublishPacket, client, principal.deviceId)
      verdicts.set(packet, admitted)
      if (!admitted) return done(null)
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

  // A device's publish that passed the ACL, is acknowledged (MQTT 3.1.1 has no negative PUBACK) and may still be
  // dropped here, before it is retained or routed: over the payload contract, or over the device's rate. The will
  // (`offline`) is exempt from the rate: it is the broker's word that the device is gone.
  type Route = (packet: PublishPacket, client: Client | null, done: (error?: Error) => void) => void
  const route = (aedes.publish as unknown as Route).bind(aedes)
  function admit(packet: PublishPacket, client: Client, deviceId: string): boolean {
    const size = payloadLength(packet)
    if (size > MAX_PAYLOAD_BYTES) {
      options.onDropped('oversize', client.id, `${packet.topic}: ${size} bytes${packet.retain ? ', retained' : ''}`)
      return false
    }
    const isWill = packet === (client as Client & { will?: unknown }).will
    if (!isWill && !publishBuckets.take(deviceId, now())) {
      options.onDropped('rate_limited', client.id, packet.topic)
      return false
    }
    return true
  }
  const guardedPublish: Route = (packet, client, done) => {
    if (typeof client === 'function') return route(packet, null, client)
    const principal = (client as AuthenticatedClient | null)?.latchkeyPrincipal
    if (client && principal?.kind === 'device') {
      // Already judged before the sink (routeDevicePublishes): the same verdict, counted once.
      const verdict = verdicts.get(packet)
      if (verdict === undefined ? !admit(packet, client, principal.deviceId) : !verdict) return done()
    }
    route(packet, client, done)
  }
  aedes.publish = guardedPublish as unknown as typeof aedes.publish

  aedes.on('client', (client) => clients.set(client.id, client))
  aedes.on('clientDisconnect', (client) => {
    if (clients.get(client.id) === client) clients.delete(client.id)
    publishBuckets.forgetIfFull(client.id, now())
  })
  aedes.on('connackSent', (_packet, client) => {
    acceptFrames(client.conn as Socket)
    releaseConnectPacket(client)
  })
  aedes.on('clientError', () => {
    // Refusals are reported through onRefused; a socket error of one client concerns nobody else.
  })
  aedes.on('connectionError', () => {})

  // One options object for every connection: a closure per socket would stay with every idle lock.
  const frameGuardOptions = {
    maxPacketBytes: limits.maxPacketBytes,
    onViolation: (violation: FrameViolation, detail: string, socket: Socket) =>
      options.onRefused(violation, (socket as Socket & { client?: Client }).client?.id ?? undefined, detail),
  }
  const accept = (socket: Socket, reserved: boolean) => {
    socket.setNoDelay(true)
    if (reserved) serviceOnly.add(socket)
    guardFrames(socket, frameGuardOptions)
    aedes.handle(socket as unknown as Parameters<typeof aedes.handle>[0])
  }

  const listen = async (server: Server, port: number, host: string) => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (error) => options.onError?.(error))
    return (server.address() as AddressInfo).port
  }

  const plaintext = options.plaintext ?? true
  const servers: Server[] = []
  const plain = createServer({ noDelay: true }, (socket) => accept(socket, !plaintext))
  servers.push(plain)
  const port = await listen(plain, options.port, plaintext ? options.host : '127.0.0.1')
  let tlsPort: number | undefined
  const secure = options.tls
    ? createTlsServer({ ...options.tls.context }, (socket) => accept(socket, false))
    : undefined
  if (secure && options.tls) {
    servers.push(secure)
    // A failed handshake (an untrusted or plain-text client) concerns nobody else.
    secure.on('tlsClientError', () => {})
    try {
      tlsPort = await listen(secure, options.tls.port, options.host)
    } catch (error) {
      await new Promise<void>((resolve) => plain.close(() => resolve()))
      throw error
    }
  }

  return {
    port,
    tlsPort,
    setSecureContext(context) {
      secure?.setSecureContext(context)
    },
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
    retainedBytes: () => persistence.retainedBytes(),
    async close() {
      router.close()
      for (const client of clients.values()) client.close()
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    },
  }
}

/** What mqtt-packet's parser keeps of a connection's CONNECT to parse the packets after it. */
interface ParserSettings {
  protocolVersion?: number
  bridgeMode?: boolean
}

/**
 * Once the connection is accepted, lets go of the CONNECT packet: aedes' MQTT parser (mqtt-packet) keeps it whole as
 * its `settings` for the life of the connection, password and will included, and the password a view of the socket
 * read it arrived in (~0.5 KiB per idle lock, docs/performance.md#idle-lock-memory). The parser reads only the
 * protocol version and bridge mode from it after the CONNECT. A parser without that field is left alone.
 */
export function releaseConnectPacket(client: Client): void {
  const parser = (client as unknown as { _parser?: { settings?: ParserSettings } })._parser
  const settings = parser?.settings
  if (!parser || !settings || typeof settings.protocolVersion !== 'number') return
  parser.settings = { protocolVersion: settings.protocolVersion, bridgeMode: settings.bridgeMode === true }
}

/**
 * Device publishes in, one chain per device. A message goes to the sink as soon as it arrives, in the order sent (the
 * sink takes its place in the write order before it yields, so `state` then `ack` commit in that order, and in the
 * same group commit when they arrive together); each settles only after the previous one of its device, and fails
 * with it, so PUBACKs go out in order. Publishes that arrive before the sink is set wait for it. The map holds only
 * devices with a message in progress.
 */
function createRouter() {
  const chains = new Map<string, Promise<void>>()
  let sink: PublishSink | undefined
  let closed = false
  let sinkSet: () => void = () => {}
  const ready = new Promise<void>((resolve) => (sinkSet = resolve))
  // A sink that throws instead of rejecting leaves the message unacknowledged too.
  const take = async (topic: string, payload: Buffer): Promise<void> => {
    if (closed || !sink) throw new Error('broker closing')
    return sink(topic, payload)
  }

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
      const previous = chains.get(key)
      const own = sink ? take(topic, payload) : ready.then(() => take(topic, payload))
      // A failed predecessor fails this one too: its device reconnects and resends both, in order.
      const current = previous ? Promise.all([previous, own]).then(() => {}) : own
      chains.set(key, current)
      const forget = () => {
        if (chains.get(key) === current) chains.delete(key)
      }
      current.then(forget, forget)
      return current
    },
  }
}
