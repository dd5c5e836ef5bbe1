import type { AttemptService } from '../app/attempts.js'
import type { DeviceMessageHandler } from '../app/device-messages.js'
import type { Transport } from '../app/transport.js'
import type { Config } from '../config.js'
import { createMqttTransport } from '../mqtt/transport.js'
import type { Runtime } from './runtime.js'
import type { MqttUrls } from './urls.js'

/** Step 4a: the transport to the locks, built before the services so that they can send through it. */
export function createTransport(
  config: Pick<Config, 'MQTT_SERVICE_USERNAME'>,
  rt: Pick<Runtime, 'onError'>,
  mqtt: { urls: MqttUrls; servicePassword: string },
): Transport {
  return createMqttTransport({
    url: mqtt.urls.internal,
    username: config.MQTT_SERVICE_USERNAME,
    password: mqtt.servicePassword,
    onError: rt.onError,
  })
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
