import { createBroker, type Broker } from '../../broker/index.js'
import { newServiceSecret } from '../app/credentials.js'
import { createDeviceAuth } from '../app/device-auth.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { listenAs } from './listen.js'
import { brokerSettings, deviceBrokerUrls } from '../mqtt/broker-settings.js'
import type { TlsContext } from '../tls.js'
import type { Runtime } from './runtime.js'
import { hostForUrl, mqttUrls, type MqttUrls } from './urls.js'

export interface Mqtt {
  /** The embedded broker; undefined when an external one is configured. */
  broker: Broker | undefined
  urls: MqttUrls
  /** Every listener devices can reach the embedded broker at (plain and/or TLS); empty with an external broker. */
  deviceUrls: string[]
  /** The password of the orchestrator's own client: configured, or made for this process. */
  servicePassword: string
}

/** Step 2: the embedded broker (unless an external one is configured), checking passwords through device auth. */
export async function startBroker(
  config: Config,
  rt: Pick<Runtime, 'clock' | 'metrics' | 'log' | 'lifecycle'>,
  store: Pick<Store, 'devices'>,
  tls: TlsContext | undefined,
): Promise<Mqtt> {
  const servicePassword = config.MQTT_SERVICE_PASSWORD ?? newServiceSecret()
  let broker: Broker | undefined
  if (config.EMBEDDED_BROKER) {
    const embedded = await listenAs(
      [
        { variable: 'MQTT_PORT', host: config.MQTT_HOST, port: config.MQTT_PORT },
        ...(tls ? [{ variable: 'MQTTS_PORT', host: config.MQTT_HOST, port: config.MQTTS_PORT }] : []),
      ],
      () =>
        createBroker({
          host: config.MQTT_HOST,
          port: config.MQTT_PORT,
          // The in-process transport (src/mqtt/in-process-transport.ts) takes device messages before their PUBACK.
          routeDevicePublishes: true,
          ...brokerSettings(config, tls),
          now: () => rt.clock.now(),
          authenticate: createDeviceAuth({ serviceUsername: config.MQTT_SERVICE_USERNAME, servicePassword, store }),
          onRefused(reason, clientId, detail) {
            rt.metrics.inc('mqtt_refusals_total', { reason })
            rt.log.warn({ reason, clientId, detail }, 'mqtt refused')
          },
          onDropped(reason, clientId, detail) {
            rt.metrics.inc('mqtt_messages_dropped_total', { reason })
            rt.log.debug({ reason, clientId, detail }, 'mqtt publish dropped')
          },
        }),
    )
    rt.lifecycle.defer('broker', () => embedded.close())
    broker = embedded
  }
  const deviceUrls = deviceBrokerUrls(config, hostForUrl(config.MQTT_HOST), broker)
  return { broker, urls: mqttUrls(config, broker?.port, deviceUrls), deviceUrls, servicePassword }
}
