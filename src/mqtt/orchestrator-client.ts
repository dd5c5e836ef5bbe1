import mqtt, { type MqttClient } from 'mqtt'
import type { Socket } from 'node:net'
import { deviceTopic, fleetSubscriptions, parseDeviceTopic, TOPIC_ROOT, type Command } from '../../devices/index.js'
import type { CommandSender } from '../app/attempts.js'

export interface OrchestratorClientOptions {
  url: string
  username: string
  password: string
  /** Resolves after the message's effect is committed; only then is it PUBACKed (docs/design.md, invariant 2). */
  onMessage: (topic: string, payload: Buffer) => Promise<void>
  onError: (error: unknown, context: string) => void
  /**
   * External broker shared by several instances (docs/scale-out.md#several-instances): this instance's own client
   * id, a clean session, a short keepalive, the uplinks through `$share/<group>/…` so that one instance handles each
   * message, and the retained presence read at each connect through a short-lived plain subscription.
   */
  shared?: SharedUplinks
}

export interface SharedUplinks {
  clientId: string
  group: string
  keepaliveSeconds: number
  /** Upper bound of the retained read at connect (default 10 s). */
  retainedReadMs?: number
  /** After each retained read: how many messages it handled. */
  onRetainedRead?: (handled: number) => void
}

/** Uplink filters as a shared subscription of `group`. */
export function sharedSubscriptions(group: string): string[] {
  return fleetSubscriptions().map((filter) => `$share/${group}/${filter}`)
}

/** The kinds whose retained message describes a device now: read again at every connect of a shared instance. */
const RETAINED_KINDS = ['status', 'state'] as const

export interface OrchestratorClient extends CommandSender {
  readonly connected: boolean
  close(): Promise<void>
}

function noDelay(client: MqttClient): void {
  // Without TCP_NODELAY a QoS 1 round trip on loopback costs 40–90 ms instead of ~0.5 ms (docs/mqtt.md#connecting).
  const stream = client.stream as Partial<Socket> | undefined
  stream?.setNoDelay?.(true)
}

/** The orchestrator's own MQTT client: follows every device's uplink topics and publishes commands. */
export async function connectOrchestrator(options: OrchestratorClientOptions): Promise<OrchestratorClient> {
  const shared = options.shared
  const readers = new Set<MqttClient>()
  let closing = false
  const client = mqtt.connect(options.url, {
    protocolVersion: 4,
    clientId: shared?.clientId ?? options.username,
    username: options.username,
    password: options.password,
    clean: shared !== undefined,
    ...(shared ? { keepalive: shared.keepaliveSeconds } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    manualConnect: true,
  })
  client.handleMessage = (packet, done) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    options.onMessage(packet.topic, payload).then(
      () => done(),
      (error: unknown) => {
        // Not committed: withhold the PUBACK so the broker redelivers after the next reconnect.
        options.onError(error, `handle ${packet.topic}`)
        done(error as Error)
      },
    )
  }
  client.on('connect', () => {
    noDelay(client)
    const filters = shared ? sharedSubscriptions(shared.group) : fleetSubscriptions()
    client.subscribe(filters, { qos: 1 }, (error) => {
      if (error) options.onError(error, 'subscribe')
      else if (shared) {
        readRetained(options, shared, readers).then(
          (handled) => shared.onRetainedRead?.(handled),
          (failure: unknown) => {
            if (!closing) options.onError(failure, 'read retained')
          },
        )
      }
    })
  })
  client.on('error', (error) => options.onError(error, 'mqtt client'))

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      client.end(true)
      reject(error)
    }
    client.once('error', onError)
    client.once('connect', () => {
      client.off('error', onError)
      resolve()
    })
    client.connect()
  })

  return {
    get connected() {
      return client.connected
    },
    send(deviceId: string, command: Command): Promise<void> {
      return new Promise((resolve, reject) => {
        client.publish(deviceTopic(deviceId, 'commands'), JSON.stringify(command), { qos: 1 }, (error) =>
          error ? reject(error) : resolve(),
        )
      })
    },
    close: async () => {
      // A retained read still under way stops with the client: nothing is handled after close.
      closing = true
      for (const reader of readers) reader.end(true)
      await new Promise<void>((resolve) => client.end(false, {}, () => resolve()))
    },
  }
}

/**
 * A shared subscription may get no retained messages (EMQX and VerneMQ send none; mosquitto 2.0 does), so a shared
 * instance reads the devices' retained
 * `status` and `state` through a second, short-lived client with plain subscriptions, hands each to the same
 * handler, then disconnects. The read ends at a marker: a second SUBSCRIBE's SUBACK, which the broker sends after
 * the retained messages of the first (QoS 0, so no in-flight window holds them back), or at `retainedReadMs`.
 * Live messages on that client are ignored: the shared subscription delivers them. Handlers are idempotent, so a
 * message seen both ways does no harm.
 */
async function readRetained(
  options: OrchestratorClientOptions,
  shared: SharedUplinks,
  readers: Set<MqttClient>,
): Promise<number> {
  const reader = mqtt.connect(options.url, {
    protocolVersion: 4,
    clientId: `${shared.clientId}-retained-${Math.random().toString(16).slice(2, 8)}`,
    username: options.username,
    password: options.password,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  })
  readers.add(reader)
  reader.once('end', () => readers.delete(reader))
  const pending = new Set<Promise<void>>()
  let handled = 0
  reader.handleMessage = (packet, done) => {
    const kind = parseDeviceTopic(packet.topic)?.kind
    if (packet.retain && (kind === 'status' || kind === 'state')) {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      const work = options.onMessage(packet.topic, payload).then(
        () => void handled++,
        (error: unknown) => options.onError(error, `handle retained ${packet.topic}`),
      )
      pending.add(work)
      void work.finally(() => pending.delete(work))
    }
    done()
  }
  reader.on('error', (error) => options.onError(error, 'retained reader'))
  const limit = shared.retainedReadMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`retained read not finished within ${limit} ms`)), limit)
      reader.once('close', () => reject(new Error('the retained read lost its connection')))
      reader.once('connect', () => {
        const kinds = RETAINED_KINDS.map((kind) => `${TOPIC_ROOT}/+/${kind}`)
        reader.subscribe(kinds, { qos: 0 }, (error) => {
          if (error) return reject(error)
          // The marker: the events filter, whose SUBACK follows the retained messages queued above.
          reader.subscribe(`${TOPIC_ROOT}/+/events`, { qos: 0 }, (markerError) =>
            markerError ? reject(markerError) : resolve(),
          )
        })
      })
    })
    await Promise.all([...pending])
  } finally {
    clearTimeout(timer)
    await new Promise<void>((resolve) => reader.end(true, {}, () => resolve()))
  }
  return handled
}
