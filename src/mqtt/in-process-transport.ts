import { deviceTopic } from '../../devices/index.js'
import type { DeviceMessageSink, Transport } from '../app/transport.js'

/** What the in-process transport needs of the embedded broker (broker/index.ts). */
export interface InProcessBroker {
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>
  setPublishSink(sink: DeviceMessageSink): void
}

export interface InProcessTransportOptions {
  broker: InProcessBroker
  onError: (error: unknown, context: string) => void
}

/**
 * The transport to the embedded broker, without a socket: commands are published into the broker, and device
 * messages come out of it before the broker acknowledges them, so the lock's PUBACK follows the commit
 * (docs/design.md#2-puback-after-commit). Used whenever the broker is embedded; an external broker takes the
 * mqtt.js transport (src/mqtt/transport.ts).
 */
export function createInProcessTransport(options: InProcessTransportOptions): Transport {
  let state: 'built' | 'started' | 'closed' = 'built'
  return {
    get connected() {
      return state === 'started'
    },
    send(deviceId, command) {
      if (state !== 'started') return Promise.reject(new Error('MQTT transport not started'))
      return options.broker.publish(deviceTopic(deviceId, 'commands'), Buffer.from(JSON.stringify(command)), 1)
    },
    async start(onMessage) {
      if (state !== 'built') throw new Error('the in-process transport is already started')
      state = 'started'
      options.broker.setPublishSink(async (topic, payload) => {
        // After close, leave messages unacknowledged: the lock sends them again to the next process.
        if (state !== 'started') throw new Error('MQTT transport closed')
        try {
          await onMessage(topic, payload)
        } catch (error) {
          options.onError(error, `handle ${topic}`)
          throw error
        }
      })
    },
    async close() {
      state = 'closed'
    },
  }
}
