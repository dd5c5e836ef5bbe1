import { it as base, type StartOptions, type TestLatchkey } from './latchkey.js'
import { startMosquitto, type Mosquitto } from './mosquitto.js'

/** The environment of a latchkey on `mosquitto`: EMBEDDED_BROKER=false, MQTT_DEVICE_AUTH=dynsec, its admin as the service user. */
export function externalBrokerEnv(mosquitto: Mosquitto): Record<string, string> {
  return {
    EMBEDDED_BROKER: 'false',
    MQTT_URL: mosquitto.url,
    MQTT_SERVICE_USERNAME: mosquitto.admin.username,
    MQTT_SERVICE_PASSWORD: mosquitto.admin.password,
    MQTT_DEVICE_AUTH: 'dynsec',
  }
}

/**
 * `mosquitto`: a private mosquitto with dynamic security, stopped after the test. `external(options)`: a latchkey on
 * it (`externalBrokerEnv`); `options.env` adds to that.
 */
export const it = base.extend<{ mosquitto: Mosquitto; external: (extra?: StartOptions) => Promise<TestLatchkey> }>({
  mosquitto: async ({ defer }, use) => {
    const broker = await startMosquitto()
    defer(() => broker.stop())
    await use(broker)
  },
  external: async ({ mosquitto, start }, use) => {
    await use((extra = {}) => start({ ...extra, env: { ...externalBrokerEnv(mosquitto), ...extra.env } }))
  },
})
