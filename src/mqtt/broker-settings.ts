import type { Broker, BrokerOptions } from '../../broker/index.js'
import type { Config } from '../config.js'
import type { TlsContext } from '../tls.js'

/** The embedded broker's listeners and limits from the configuration (docs/mqtt.md, "Limits"; docs/operations.md, "TLS"). */
export function brokerSettings(
  config: Config,
  tls: TlsContext | undefined,
): Pick<BrokerOptions, 'plaintext' | 'tls' | 'limits'> {
  return {
    plaintext: config.MQTT_PLAINTEXT,
    ...(tls ? { tls: { port: config.MQTTS_PORT, context: tls } } : {}),
    limits: {
      maxPacketBytes: config.MQTT_MAX_PACKET_BYTES,
      devicePublishPerSecond: config.MQTT_DEVICE_PUBLISH_RATE,
      devicePublishBurst: config.MQTT_DEVICE_PUBLISH_BURST,
      authFailuresPerMinute: config.MQTT_AUTH_FAILURES_PER_MINUTE,
    },
  }
}

/** The URLs devices can reach the embedded broker at: plain (unless MQTT_PLAINTEXT=false), then TLS (when on). */
export function deviceBrokerUrls(config: Config, host: string, broker: Broker | undefined): string[] {
  if (!broker) return []
  return [
    ...(config.MQTT_PLAINTEXT ? [`mqtt://${host}:${broker.port}`] : []),
    ...(broker.tlsPort !== undefined ? [`mqtts://${host}:${broker.tlsPort}`] : []),
  ]
}
