import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { forkTs, nextMessage, request, stopChild } from '../lib/children.js'
import { runClosedLoop, type LoopResult } from '../lib/loop.js'
import { firstWarmup, type BenchOptions } from '../lib/options.js'

/**
 * Raw ceiling 1: an mqtt.js ↔ aedes QoS 1 command → ack round trip, TCP_NODELAY everywhere. Broker and publisher
 * share this process (as the broker and the orchestrator client share latchkey's); the ackers run in another.
 */

export interface RawMqttResult {
  serial: LoopResult
  pipelined: LoopResult
  /** Same, with the publisher's handleMessage calling back one setImmediate later (as a group commit does). */
  pipelined_deferred_puback: LoopResult
}

const PREFIX = 'bench'

export async function rawMqtt(options: BenchOptions): Promise<RawMqttResult> {
  const aedes = await Aedes.createBroker()
  const server = createServer({ noDelay: true }, aedes.handle as unknown as (socket: Socket) => void)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
  const window = options.e2eLocks
  const acker = forkTs('bench/lock-process.ts', [
    '--acker',
    '--count',
    String(window),
    '--prefix',
    PREFIX,
    '--mqtt-url',
    url,
  ])
  let publisher: MqttClient | undefined
  try {
    await nextMessage(acker, 'loaded', 30_000)
    await request(acker, { type: 'start' }, 'started', 60_000)
    const waiting = new Map<string, () => void>()
    let deferPuback = false
    const client = await connectPublisher(url)
    publisher = client
    const settle = (payload: Buffer | string) => {
      const { command_id } = JSON.parse(payload.toString()) as { command_id: string }
      waiting.get(command_id)?.()
      waiting.delete(command_id)
    }
    client.handleMessage = (packet, done) => {
      settle(packet.payload)
      if (deferPuback) setImmediate(() => done())
      else done()
    }
    await client.subscribeAsync(`${PREFIX}/+/ack`, { qos: 1 })

    let seq = 0
    const roundTrip = (slot: number) =>
      new Promise<boolean>((resolve, reject) => {
        const id = `c${++seq}`
        waiting.set(id, () => resolve(true))
        const command = JSON.stringify({
          command_id: id,
          action: 'LOCK_DOOR',
          issued_at: new Date().toISOString(),
          expires_at: new Date().toISOString(),
        })
        client.publish(`${PREFIX}/${slot}/cmd`, command, { qos: 1 }, (error) => error && reject(error))
      })
    const run = (concurrency: number, warmupMs: number) =>
      runClosedLoop({ concurrency, durationMs: options.durationMs, warmupMs, op: roundTrip })

    const serial = await run(1, firstWarmup(options, 0))
    const pipelined = await run(window, options.warmupMs)
    deferPuback = true
    const deferred = await run(window, options.warmupMs)
    return { serial, pipelined, pipelined_deferred_puback: deferred }
  } finally {
    await publisher?.endAsync(true)
    await stopChild(acker)
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

function connectPublisher(url: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      clientId: 'bench-publisher',
      clean: true,
      reconnectPeriod: 0,
    })
    client.once('error', reject)
    client.once('connect', () => {
      ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
      resolve(client)
    })
  })
}
