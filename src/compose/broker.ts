import { createBroker, type Broker } from '../../broker/index.js'
import { newServiceSecret } from '../app/credentials.js'
import { createDeviceAuth } from '../app/device-auth.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import type { Runtime } from './runtime.js'
import { mqttUrls, type MqttUrls } from './urls.js'

export interface Mqtt {
  /** The embedded broker; undefined when an external one is configured. */
  broker: Broker | undefined
  urls: MqttUrls
  /** The password of the orchestrator's own client: configured, or made for this process. */
  servicePassword: string
}

/** Step 2: the embedded broker (unless an external one is configured), checking passwords through device auth. */
export async function startBroker(
  config: Pick<
    Config,
    | 'EMBEDDED_BROKER'
    | 'MQTT_HOST'
    | 'MQTT_PORT'
    | 'MQTT_URL'
    | 'MQTT_PUBLIC_URL'
    | 'MQTT_SERVICE_USERNAME'
    | 'MQTT_SERVICE_PASSWORD'
  >,
  rt: Pick<Runtime, 'metrics' | 'log' | 'lifecycle'>,
  store: Pick<Store, 'devices'>,
): Promise<Mqtt> {
  const servicePassword = config.MQTT_SERVICE_PASSWORD ?? newServiceSecret()
  let broker: Broker | undefined
  if (config.EMBEDDED_BROKER) {
    const embedded = await createBroker({
      host: config.MQTT_HOST,
      port: config.MQTT_PORT,
      // The in-process transport (src/mqtt/in-process-transport.ts) takes device messages before their PUBACK.
      routeDevicePublishes: true,
      authenticate: createDeviceAuth({ serviceUsername: config.MQTT_SERVICE_USERNAME, servicePassword, store }),
      onRefused(reason, clientId, detail) {
        rt.metrics.inc('mqtt_refusals_total', { reason })
        rt.log.warn({ reason, clientId, detail }, 'mqtt refused')
      },
    })
    rt.lifecycle.defer('broker', () => embedded.close())
    broker = embedded
  }
  return { broker, urls: mqttUrls(config, broker?.port), servicePassword }
}
