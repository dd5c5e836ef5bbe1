import type { AttemptService } from '../app/attempts.js'
import type { DeviceMessageHandler } from '../app/device-messages.js'
import type { Transport } from '../app/transport.js'
import type { Config } from '../config.js'
import { createInProcessTransport } from '../mqtt/in-process-transport.js'
import type { SharedUplinks } from '../mqtt/orchestrator-client.js'
import { createMqttTransport } from '../mqtt/transport.js'
import type { Mqtt } from './broker.js'
import type { Runtime } from './runtime.js'
import type { MqttUrls } from './urls.js'

/**
 * Step 4a: the transport to the locks, built before the services so that they can send through it: in-process to
 * the embedded broker, an mqtt.js client to an external one.
 */
export function createTransport(
  config: Pick<Config, 'MQTT_SERVICE_USERNAME' | 'EMBEDDED_BROKER' | 'INSTANCE_ID'>,
  rt: Pick<Runtime, 'onError' | 'metrics'>,
  mqtt: { broker?: Mqtt['broker']; urls: MqttUrls; servicePassword: string },
): Transport {
  if (mqtt.broker) return createInProcessTransport({ broker: mqtt.broker, onError: rt.onError })
  return createMqttTransport({
    url: mqtt.urls.internal,
    username: config.MQTT_SERVICE_USERNAME,
    password: mqtt.servicePassword,
    onError: rt.onError,
    // An external broker may be shared by several instances: each handles its share of the uplinks.
    ...(config.EMBEDDED_BROKER
      ? {}
      : {
          shared: {
            ...sharedUplinks(config.INSTANCE_ID),
            onRetainedRead: (handled: number) => rt.metrics.inc('mqtt_retained_read_total', {}, handled),
          },
        }),
  })
}

/** Client id `latchkey-<INSTANCE_ID>`, group `latchkey`, 15 s keepalive (docs/scale-out.md#several-instances). */
export function sharedUplinks(instanceId: string): SharedUplinks {
  return { clientId: `latchkey-${instanceId}`, group: 'latchkey', keepaliveSeconds: 15 }
}

/** Step 4b: recover the pending attempts, then start taking device messages. */
export async function startTransport(
  rt: Pick<Runtime, 'lifecycle'>,
  transport: Transport,
  services: { attempts: Pick<AttemptService, 'recover'>; handleDeviceMessage: DeviceMessageHandler },
): Promise<void> {
  // Before the first device message: a device's `online` must find its recovered attempts waiting for it.
  await services.attempts.recover()
  await transport.start(services.handleDeviceMessage)
  rt.lifecycle.defer('transport', () => transport.close())
}
