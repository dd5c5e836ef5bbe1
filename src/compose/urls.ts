import type { Config } from '../config.js'

/** A bind address as a client can reach it: the wildcard addresses become loopback, IPv6 gets its brackets. */
export function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

export interface MqttUrls {
  /** Where the orchestrator's own client connects. */
  internal: string
  /** The broker URL handed to devices in their credentials. */
  public: string
}

/** The broker's URLs: MQTT_URL for an external broker, otherwise the embedded one's port (known once it listens). */
export function mqttUrls(
  config: Pick<Config, 'MQTT_URL' | 'MQTT_PUBLIC_URL' | 'MQTT_HOST' | 'MQTT_PORT'>,
  embeddedPort: number | undefined,
  /** The embedded broker's device listeners; the last (TLS when on) is the one handed to devices. */
  deviceUrls: string[] = [],
): MqttUrls {
  const port = embeddedPort ?? config.MQTT_PORT
  const internal = config.MQTT_URL ?? `mqtt://127.0.0.1:${port}`
  const fallback = config.MQTT_URL ? internal : (deviceUrls.at(-1) ?? `mqtt://${hostForUrl(config.MQTT_HOST)}:${port}`)
  return { internal, public: config.MQTT_PUBLIC_URL ?? fallback }
}

export function httpUrl(host: string, port: number, tls = false): string {
  return `${tls ? 'https' : 'http'}://${hostForUrl(host)}:${port}`
}
