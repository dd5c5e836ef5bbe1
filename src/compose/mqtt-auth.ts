import { createDeviceAuth } from '../app/device-auth.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import type { MqttAuthDeps } from '../http/mqtt-auth/plugin.js'
import type { Runtime } from './runtime.js'

/**
 * The broker callbacks of `MQTT_DEVICE_AUTH=http` (docs/scale-out.md): the same device auth as the embedded broker,
 * served by the HTTP step. Undefined in the other modes, and then no `/mqtt-auth` route exists.
 */
export function mqttAuthDeps(
  config: Pick<Config, 'MQTT_DEVICE_AUTH' | 'MQTT_AUTH_SECRET' | 'MQTT_SERVICE_USERNAME'>,
  rt: Pick<Runtime, 'metrics'>,
  store: Pick<Store, 'devices'>,
  servicePassword: string,
): MqttAuthDeps | undefined {
  if (config.MQTT_DEVICE_AUTH !== 'http' || !config.MQTT_AUTH_SECRET) return undefined
  return {
    secret: config.MQTT_AUTH_SECRET,
    serviceUsername: config.MQTT_SERVICE_USERNAME,
    authenticate: createDeviceAuth({ serviceUsername: config.MQTT_SERVICE_USERNAME, servicePassword, store }),
    deviceExists: async (deviceId) => (await store.devices.secretHash(deviceId)) !== undefined,
    metrics: rt.metrics,
  }
}
