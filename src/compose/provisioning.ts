import type { DeviceProvisioner } from '../app/devices.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { connectDynsec } from '../mqtt/dynsec.js'
import type { Runtime } from './runtime.js'
import type { MqttUrls } from './urls.js'

/** How long each dynamic-security command's answer is awaited before the API answers 503. */
export const DYNSEC_TIMEOUT_MS = 5000

/**
 * Step 2b, `MQTT_DEVICE_AUTH=dynsec` only (docs/scale-out.md): connects to mosquitto's dynamic security as the
 * service user (a dynsec admin), grants the service role what the orchestrator needs (reading first, so instances
 * starting together kick nobody), removes broker clients whose device is gone, and returns the provisioner the
 * device service calls on create, rotate and delete. Runs before the transport connects, so that the orchestrator
 * starts with its role in place.
 */
export async function startProvisioner(
  config: Pick<Config, 'MQTT_DEVICE_AUTH' | 'MQTT_SERVICE_USERNAME'>,
  rt: Pick<Runtime, 'log' | 'lifecycle' | 'onError'>,
  store: Pick<Store, 'devices'>,
  mqtt: { urls: MqttUrls; servicePassword: string },
): Promise<DeviceProvisioner | undefined> {
  if (config.MQTT_DEVICE_AUTH !== 'dynsec') return undefined
  const dynsec = await connectDynsec({
    url: mqtt.urls.internal,
    username: config.MQTT_SERVICE_USERNAME,
    password: mqtt.servicePassword,
    timeoutMs: DYNSEC_TIMEOUT_MS,
    onError: rt.onError,
  })
  rt.lifecycle.defer('dynsec', () => dynsec.close())
  const granted = await dynsec.ensureServiceRole()
  if (granted.length > 0) rt.log.info({ granted }, 'dynsec: service role updated')
  const { removed } = await dynsec.reconcile(
    async (deviceId) => (await store.devices.secretHash(deviceId)) !== undefined,
  )
  if (removed.length > 0) rt.log.info({ removed }, 'dynsec: removed broker clients of deleted devices')
  return dynsec
}
