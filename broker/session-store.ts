import persistenceModule from 'aedes-persistence'
import { Readable } from 'node:stream'
import { hasWildcard, matchesLevels } from './topic-filter.js'

/** The packets the store receives from aedes (aedes-packet's shape, loosely). */
export interface StoredPacket {
  cmd?: string
  topic: string
  payload: Buffer | string
  qos: number
  retain?: boolean
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  [field: string]: unknown
}

interface ClientRef {
  id: string
}

/** A subscription as a client asked for it (MQTT 5 fields undefined for 3.1.1 clients). */
interface SubscriptionRequest {
  topic: string
  qos: number
  rh?: number
  rap?: number
  nl?: boolean | number
  subscriptionIdentifier?: number
}

/** One stored subscription: the client's record and, when QoS > 0, its entry in the topic index, in one object. */
interface Subscription {
  clientId: string
  topic: string
  qos: number
  rh: number | undefined
  rap: number | undefined
  nl: boolean | number | undefined
  subscriptionIdentifier: number | undefined
}

/**
 * The retained message of a topic, as one string: its QoS as a digit, then its payload's bytes as latin1 (which maps
 * every byte to one character and back). That is what a new subscriber is sent, no more, in ~16 bytes of header
 * where a packet object, a Buffer and its ArrayBuffer took ~220, and no slice pins a shared allocation pool. The
 * packet is made again for the rare reader: a new subscription's retained messages.
 */
type RetainedMessage = string

function retainedMessage(qos: number, payload: string): RetainedMessage {
  return String.fromCharCode(48 + qos) + payload
}

/** What a new subscriber is sent for a retained message. */
interface RetainedPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: number
  retain: true
}

interface WildcardSubscriptions {
  levels: string[]
  byClient: Map<string, Subscription>
}

// aedes-persistence is CommonJS: its module object carries the packet class aedes queues (aedes-packet).
const Packet = (persistenceModule as unknown as { Packet: new (packet: object, broker?: object) => StoredPacket })
  .Packet

/** Payloads at most this long are shared between messages with the same bytes (`online`, `offline`, states). */
const SHARED_PAYLOAD_BYTES = 256
/** At most this many distinct shared payloads of each kind; past it, payloads are copied, not shared. */
const SHARED_PAYLOADS = 1024

function noSuchPacket(): Error {
  return new Error('no such packet')
}

/**
 * The embedded broker's sessions, retained messages and wills, in memory (aedes' `persistence` option, the
 * interface of aedes-persistence). It keeps what the memory persistence that ships with aedes keeps, in a layout
 * sized for tens of thousands of idle locks (docs/performance.md#idle-lock-memory):
 *
 * - A subscription is one object, in a `Map` per topic for exact topics (a lock's `commands`: one entry, no trie)
 *   and per filter for wildcards; a client with one subscription keeps that object itself rather than a map of one.
 * - Each retained message is kept once, by topic, with only what a new subscriber receives; a retained subscribe
 *   to an exact topic is one map read, not a scan of every retained message.
 * - Short payloads (`online`, `offline`, a lock's state) are shared between the messages and wills that carry the
 *   same bytes, and no payload keeps the socket read it arrived in alive.
 * - Queues of in-flight packets exist only while they hold a packet.
 */
export class SessionStore {
  private broker: { id: string } | undefined
  private readonly retained = new Map<string, RetainedMessage>()
  private retainedPayloadBytes = 0
  /** Shared will payloads, and shared retained payloads, by their bytes as latin1 text. */
  private readonly payloads = new Map<string, Buffer>()
  private readonly texts = new Map<string, string>()
  private readonly clients = new Map<string, Subscription | Map<string, Subscription>>()
  private readonly exact = new Map<string, Subscription | Subscription[]>()
  private readonly wildcard = new Map<string, WildcardSubscriptions>()
  private indexed = 0
  private readonly outgoing = new Map<string, StoredPacket[]>()
  private readonly incoming = new Map<string, Map<number, StoredPacket>>()
  private readonly wills = new Map<string, StoredPacket>()
  private destroyed = false

  // aedes requires an async function here.
  async setup(broker: { id: string }): Promise<void> {
    this.broker = broker
  }

  /** Payload bytes held as retained messages. */
  retainedBytes(): number {
    return this.retainedPayloadBytes
  }

  /** A payload that shares nothing with the packet it came in: a shared copy when short, a right-sized one else. */
  private own(payload: Buffer | string): Buffer {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload
    if (bytes.length > SHARED_PAYLOAD_BYTES) return Buffer.from(bytes)
    const key = bytes.toString('latin1')
    const shared = this.payloads.get(key)
    if (shared) return shared
    const copy = Buffer.from(bytes)
    if (this.payloads.size < SHARED_PAYLOADS) this.payloads.set(key, copy)
    return copy
  }

  /** A retained message as stored, the same string for the same QoS and bytes when short. */
  private text(qos: number, payload: Buffer | string): RetainedMessage {
    const text = retainedMessage(qos, (typeof payload === 'string' ? Buffer.from(payload) : payload).toString('latin1'))
    if (text.length > SHARED_PAYLOAD_BYTES) return text
    const shared = this.texts.get(text)
    if (shared !== undefined) return shared
    if (this.texts.size < SHARED_PAYLOADS) this.texts.set(text, text)
    return text
  }

  async storeRetained(packet: StoredPacket): Promise<void> {
    const previous = this.retained.get(packet.topic)
    if (previous) this.retainedPayloadBytes -= previous.length - 1
    // [MQTT-3.3.1-10]: an empty retained payload clears the topic.
    if (packet.payload.length === 0) {
      this.retained.delete(packet.topic)
      return
    }
    const message = this.text(packet.qos, packet.payload)
    this.retainedPayloadBytes += message.length - 1
    this.retained.set(packet.topic, message)
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  /** Retained messages matching each pattern in turn (a message matching two patterns comes twice, as in aedes). */
  createRetainedStreamCombi(patterns: string[]): Readable {
    const retained = this.retained
    const packet = (topic: string, message: RetainedMessage): RetainedPacket => ({
      cmd: 'publish',
      topic,
      payload: Buffer.from(message.slice(1), 'latin1'),
      qos: message.charCodeAt(0) - 48,
      retain: true,
    })
    function* matching(): Generator<RetainedPacket> {
      for (const pattern of patterns) {
        if (!hasWildcard(pattern)) {
          const message = retained.get(pattern)
          if (message !== undefined) yield packet(pattern, message)
          continue
        }
        const levels = pattern.split('/')
        for (const [topic, message] of retained) if (matchesLevels(levels, topic)) yield packet(topic, message)
      }
    }
    return Readable.from(matching())
  }

  async addSubscriptions(client: ClientRef, subs: SubscriptionRequest[]): Promise<void> {
    for (const sub of subs) {
      const previous = this.subscriptionOf(client.id, sub.topic)
      if (previous && previous.qos > 0) this.unindex(previous)
      const subscription: Subscription = {
        clientId: client.id,
        topic: previous?.topic ?? sub.topic,
        qos: sub.qos,
        rh: sub.rh,
        rap: sub.rap,
        nl: sub.nl,
        subscriptionIdentifier: sub.subscriptionIdentifier,
      }
      this.keep(subscription)
      // Only QoS > 0 subscriptions have messages queued for them while their client is away.
      if (subscription.qos > 0) this.index(subscription)
    }
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    for (const topic of topics) {
      const subscription = this.subscriptionOf(client.id, topic)
      if (!subscription) continue
      if (subscription.qos > 0) this.unindex(subscription)
      this.drop(subscription)
    }
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    for (const subscription of this.subscriptionsOf(client.id)) if (subscription.qos > 0) this.unindex(subscription)
    this.clients.delete(client.id)
  }

  async subscriptionsByClient(client: ClientRef): Promise<SubscriptionRequest[]> {
    return this.subscriptionsOf(client.id).map(({ topic, qos, rh, rap, nl, subscriptionIdentifier }) => ({
      topic,
      qos,
      rh,
      rap,
      nl,
      ...(subscriptionIdentifier === undefined ? {} : { subscriptionIdentifier }),
    }))
  }

  /** The QoS > 0 subscriptions matching a topic name, one per client and filter. */
  async subscriptionsByTopic(topic: string): Promise<Array<Omit<Subscription, 'subscriptionIdentifier'>>> {
    const found: Array<Omit<Subscription, 'subscriptionIdentifier'>> = []
    const copy = ({ clientId, topic, qos, rh, rap, nl }: Subscription) => ({ clientId, topic, qos, rh, rap, nl })
    const exact = this.exact.get(topic)
    if (Array.isArray(exact)) for (const subscription of exact) found.push(copy(subscription))
    else if (exact) found.push(copy(exact))
    for (const entry of this.wildcard.values()) {
      if (!matchesLevels(entry.levels, topic)) continue
      for (const subscription of entry.byClient.values()) found.push(copy(subscription))
    }
    return found
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.indexed, clientsCount: this.clients.size }
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    this.enqueue(sub.clientId, packet)
  }

  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    for (const sub of subs) this.enqueue(sub.clientId, packet)
  }

  private enqueue(clientId: string, packet: StoredPacket): void {
    const queue = this.outgoing.get(clientId)
    if (queue) queue.push(new Packet(packet))
    else this.outgoing.set(clientId, [new Packet(packet)])
  }

  /** Records the packet id a queued packet went out with (found by broker and counter, else by packet id). */
  async outgoingUpdate(client: ClientRef, packet: StoredPacket): Promise<void> {
    const queue = this.outgoing.get(client.id) ?? []
    for (let i = 0; i < queue.length; i++) {
      const queued = queue[i] as StoredPacket
      if (queued.brokerId === packet.brokerId) {
        if (queued.brokerCounter === packet.brokerCounter) {
          queued.messageId = packet.messageId
          return
        }
        // Packet ids wrap at 65535: a different counter with the same id is another packet; keep looking.
      } else if (queued.messageId === packet.messageId) {
        queue[i] = packet
        return
      }
    }
    throw noSuchPacket()
  }

  async outgoingClearMessageId(client: ClientRef, packet: StoredPacket): Promise<StoredPacket | undefined> {
    const queue = this.outgoing.get(client.id)
    if (!queue) return undefined
    const index = queue.findIndex((queued) => queued.messageId === packet.messageId)
    if (index < 0) return undefined
    const [cleared] = queue.splice(index, 1)
    if (queue.length === 0) this.outgoing.delete(client.id)
    return cleared
  }

  outgoingStream(client: ClientRef): Readable {
    // A copy: the queue changes while the stream is read.
    return Readable.from([...(this.outgoing.get(client.id) ?? [])])
  }

  async incomingStorePacket(client: ClientRef, packet: StoredPacket): Promise<void> {
    const stored = new Packet(packet)
    stored.messageId = packet.messageId
    let packets = this.incoming.get(client.id)
    if (!packets) this.incoming.set(client.id, (packets = new Map()))
    packets.set(packet.messageId as number, stored)
  }

  async incomingGetPacket(client: ClientRef, packet: StoredPacket): Promise<StoredPacket> {
    const stored = this.incoming.get(client.id)?.get(packet.messageId as number)
    if (!stored) throw noSuchPacket()
    return stored
  }

  async incomingDelPacket(client: ClientRef, packet: StoredPacket): Promise<void> {
    const packets = this.incoming.get(client.id)
    if (!packets?.delete(packet.messageId as number)) throw noSuchPacket()
    if (packets.size === 0) this.incoming.delete(client.id)
  }

  async cleanIncoming(client: ClientRef): Promise<void> {
    this.incoming.delete(client.id)
  }

  /** Keeps the will aedes holds for the client (the same object, its payload shared), stamped with broker and client. */
  async putWill(client: ClientRef, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.broker?.id
    packet.clientId = client.id
    packet.payload = this.own(packet.payload)
    this.wills.set(client.id, packet)
  }

  async getWill(client: ClientRef): Promise<StoredPacket | undefined> {
    return this.wills.get(client.id)
  }

  async delWill(client: ClientRef): Promise<StoredPacket | undefined> {
    const will = this.wills.get(client.id)
    this.wills.delete(client.id)
    return will
  }

  /** Wills of clients whose broker is not among `brokers` (a cluster's live brokers). */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    const wills = this.wills
    function* orphaned(): Generator<StoredPacket> {
      for (const will of wills.values()) if (!brokers[will.brokerId as string]) yield will
    }
    return Readable.from(orphaned())
  }

  /** Clients with a stored subscription to exactly this filter. */
  getClientList(topic: string): Readable {
    const clients = this.clients
    function* subscribed(): Generator<string> {
      for (const [clientId, stored] of clients) {
        if (stored instanceof Map ? stored.has(topic) : stored.topic === topic) yield clientId
      }
    }
    return Readable.from(subscribed())
  }

  async destroy(): Promise<void> {
    if (this.destroyed) throw new Error('destroyed called twice!')
    this.destroyed = true
    this.retained.clear()
  }

  private subscriptionOf(clientId: string, topic: string): Subscription | undefined {
    const stored = this.clients.get(clientId)
    if (stored instanceof Map) return stored.get(topic)
    return stored?.topic === topic ? stored : undefined
  }

  private subscriptionsOf(clientId: string): Subscription[] {
    const stored = this.clients.get(clientId)
    if (stored instanceof Map) return [...stored.values()]
    return stored ? [stored] : []
  }

  /** Stores the client's record: the subscription itself while it is the client's only one. */
  private keep(subscription: Subscription): void {
    const stored = this.clients.get(subscription.clientId)
    if (stored === undefined || (!(stored instanceof Map) && stored.topic === subscription.topic)) {
      this.clients.set(subscription.clientId, subscription)
    } else if (stored instanceof Map) {
      stored.set(subscription.topic, subscription)
    } else {
      this.clients.set(
        subscription.clientId,
        new Map([
          [stored.topic, stored],
          [subscription.topic, subscription],
        ]),
      )
    }
  }

  private drop(subscription: Subscription): void {
    const stored = this.clients.get(subscription.clientId)
    if (!(stored instanceof Map)) {
      if (stored === subscription) this.clients.delete(subscription.clientId)
      return
    }
    stored.delete(subscription.topic)
    if (stored.size === 1) this.clients.set(subscription.clientId, stored.values().next().value as Subscription)
  }

  private index(subscription: Subscription): void {
    this.indexed++
    const { topic } = subscription
    if (hasWildcard(topic)) {
      let entry = this.wildcard.get(topic)
      if (!entry) this.wildcard.set(topic, (entry = { levels: topic.split('/'), byClient: new Map() }))
      entry.byClient.set(subscription.clientId, subscription)
      return
    }
    const existing = this.exact.get(topic)
    if (existing === undefined) this.exact.set(topic, subscription)
    else if (Array.isArray(existing)) existing.push(subscription)
    else this.exact.set(topic, [existing, subscription])
  }

  private unindex(subscription: Subscription): void {
    const { topic, clientId } = subscription
    if (hasWildcard(topic)) {
      const entry = this.wildcard.get(topic)
      if (entry?.byClient.delete(clientId)) this.indexed--
      if (entry?.byClient.size === 0) this.wildcard.delete(topic)
      return
    }
    const existing = this.exact.get(topic)
    if (existing === undefined) return
    if (!Array.isArray(existing)) {
      if (existing.clientId === clientId) {
        this.exact.delete(topic)
        this.indexed--
      }
      return
    }
    const index = existing.findIndex((entry) => entry.clientId === clientId)
    if (index < 0) return
    existing.splice(index, 1)
    this.indexed--
    if (existing.length === 1) this.exact.set(topic, existing[0] as Subscription)
  }
}
