import mqtt, { type MqttClient } from 'mqtt'
import type { Socket } from 'node:net'
import { deviceTopic, fleetSubscriptions, type Command } from '../../devices/index.js'
import type { CommandSender } from '../app/attempts.js'

export interface OrchestratorClientOptions {
  url: string
  username: string
  password: string
  /** Resolves after the message's effect is committed; only then is it PUBACKed (docs/design.md, invariant 2). */
  onMessage: (topic: string, payload: Buffer) => Promise<void>
  onError: (error: unknown, context: string) => void
}

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
  const client = mqtt.connect(options.url, {
    protocolVersion: 4,
    clientId: options.username,
    username: options.username,
    password: options.password,
    clean: false,
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
    client.subscribe(fleetSubscriptions(), { qos: 1 }, (error) => {
      if (error) options.onError(error, 'subscribe')
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
    close: () => new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
  }
}
