import type { Transport } from '../app/transport.js'
import { connectOrchestrator, type OrchestratorClient, type OrchestratorClientOptions } from './orchestrator-client.js'

/** The MQTT transport: the orchestrator's client, connected on `start`. */
export function createMqttTransport(options: Omit<OrchestratorClientOptions, 'onMessage'>): Transport {
  let client: OrchestratorClient | undefined
  return {
    get connected() {
      return client?.connected ?? false
    },
    send(deviceId, command) {
      return client ? client.send(deviceId, command) : Promise.reject(new Error('MQTT client not connected'))
    },
    async start(onMessage) {
      if (client) throw new Error('the MQTT transport is already started')
      client = await connectOrchestrator({ ...options, onMessage })
    },
    async close() {
      await client?.close()
    },
  }
}
