import mqtt, { type MqttClient } from 'mqtt'
import { parseArgs } from 'node:util'
import { Fleet, mapLimit } from '../simulator/index.js'

/**
 * The locks' side of the bench, in its own process (run through tsx, driven over IPC):
 *   --creds FILE --mqtt-url URL   a simulator Fleet of instantly acking locks (the device contract of docs/mqtt.md)
 *   --acker --count N --mqtt-url URL --prefix P
 *                                 N bare mqtt.js clients that ack every command at once: the MQTT raw ceiling
 * Messages in: start, counters, stop. Messages out: loaded, started, counters, stopped, error.
 */

const { values } = parseArgs({
  options: {
    creds: { type: 'string' },
    'mqtt-url': { type: 'string' },
    acker: { type: 'boolean' },
    count: { type: 'string' },
    prefix: { type: 'string' },
    concurrency: { type: 'string' },
  },
})
const send = (message: Record<string, unknown>) => process.send?.(message)
const url = values['mqtt-url']
if (!url) throw new Error('--mqtt-url is required')
const mqttUrl: string = url

interface Locks {
  size: number
  start(): Promise<{ failures: number; firstFailure?: string }>
  counters(): Record<string, unknown>
  stop(): Promise<void>
}

async function fleetLocks(path: string): Promise<Locks> {
  const fleet = await Fleet.fromFile(path, {
    mqttUrl,
    behaviour: { ackLatencyMs: 0 },
    connectConcurrency: Number(values.concurrency ?? 200),
    reconnectPeriodMs: 1000,
    startTimeoutMs: 300_000,
  })
  // A lock's 'error' events (e.g. a publish cut short at shutdown) are counted by the fleet; keep them quiet.
  for (const lock of fleet.locks) lock.on('error', () => {})
  return {
    size: fleet.locks.length,
    async start() {
      const failures = await fleet.start()
      return { failures: failures.length, ...(failures[0] ? { firstFailure: failures[0].error.message } : {}) }
    },
    counters: () => ({ ...fleet.counters() }),
    stop: () => fleet.stop(),
  }
}

function ackers(count: number, prefix: string): Locks {
  const clients: MqttClient[] = []
  let acked = 0
  const startOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const client = mqtt.connect(mqttUrl, {
        protocolVersion: 4,
        clientId: `${prefix}-${i}`,
        clean: true,
        reconnectPeriod: 0,
      })
      clients.push(client)
      client.once('error', reject)
      client.on('connect', () => {
        ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
        client.subscribe(`${prefix}/${i}/cmd`, { qos: 1 }, (error) => (error ? reject(error) : resolve()))
      })
      client.on('message', (_topic, payload) => {
        const { command_id } = JSON.parse(payload.toString('utf8')) as { command_id: string }
        client.publish(`${prefix}/${i}/ack`, JSON.stringify({ command_id, status: 'success' }), { qos: 1 })
        acked++
      })
    })
  return {
    size: count,
    async start() {
      await mapLimit(
        Array.from({ length: count }, (_, i) => i),
        50,
        startOne,
      )
      return { failures: 0 }
    },
    counters: () => ({ acked }),
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true)))
    },
  }
}

async function main(): Promise<void> {
  const locks = values.acker
    ? ackers(Number(values.count ?? 1), values.prefix ?? 'bench')
    : await fleetLocks(values.creds ?? '')
  process.on('message', (raw) => {
    const message = raw as { type: string }
    const reply = async () => {
      switch (message.type) {
        case 'start': {
          const t0 = performance.now()
          const result = await locks.start()
          return { type: 'started', ms: performance.now() - t0, ...result }
        }
        case 'counters':
          return { type: 'counters', ...locks.counters() }
        case 'stop':
          await locks.stop()
          return { type: 'stopped' }
        default:
          return { type: 'error', message: `unknown message ${message.type}` }
      }
    }
    reply().then(send, (error: unknown) => send({ type: 'error', message: String(error) }))
  })
  send({ type: 'loaded', locks: locks.size })
}

main().catch((error: unknown) => {
  send({ type: 'error', message: String(error) })
  process.exit(1)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
