import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

/** Connects a raw MQTT 3.1.1 client; resolves once connected, rejects with the CONNACK refusal. No retries. */
export function connectRaw(url: string, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options })
    client.once('connect', () => {
      ;(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
      resolve(client)
    })
    client.once('error', (error) => {
      client.end(true)
      reject(error)
    })
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
}

/** Subscribes and resolves with the granted QoS per filter (128 = refused). */
export function subscribe(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      // mqtt.js reports a SUBACK 0x80 as an error carrying the packet.
      const refused = (error as { packet?: { granted?: number[] } } | undefined)?.packet?.granted?.[0]
      if (refused !== undefined) return resolve(refused)
      if (error) return reject(error)
      resolve(granted?.[0]?.qos ?? -1)
    })
  })
}

export function publish(client: MqttClient, topic: string, payload: string | Buffer, retain = false): Promise<void> {
  return new Promise((resolve, reject) =>
    client.publish(topic, payload, { qos: 1, retain }, (error) => (error ? reject(error) : resolve())),
  )
}

export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve()
    client.once('close', () => resolve())
  })
}

export async function end(client: MqttClient): Promise<void> {
  await new Promise<void>((resolve) => client.end(true, {}, () => resolve()))
}
