import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.js'
import { problemsOf } from '../helpers/config.js'

const external = { EMBEDDED_BROKER: 'false', MQTT_URL: 'mqtt://broker:1883', MQTT_SERVICE_PASSWORD: 'p'.repeat(20) }

describe('MQTT_DEVICE_AUTH', () => {
  it('defaults to embedded and accepts dynsec and http', () => {
    expect(loadConfig({}).MQTT_DEVICE_AUTH).toBe('embedded')
    expect(loadConfig({ ...external, MQTT_DEVICE_AUTH: 'dynsec' }).MQTT_DEVICE_AUTH).toBe('dynsec')
    const http = loadConfig({ ...external, MQTT_DEVICE_AUTH: 'http', MQTT_AUTH_SECRET: 's'.repeat(16) })
    expect(http).toMatchObject({ MQTT_DEVICE_AUTH: 'http', MQTT_AUTH_SECRET: 's'.repeat(16) })
  })

  it('refuses an unknown mode, dynsec with the embedded broker, http without a secret, a short secret', () => {
    expect(problemsOf({ MQTT_DEVICE_AUTH: 'ldap' }).join(' ')).toMatch(/^MQTT_DEVICE_AUTH/)
    expect(problemsOf({ MQTT_DEVICE_AUTH: 'dynsec' }).join(' ')).toMatch(/MQTT_DEVICE_AUTH.*EMBEDDED_BROKER=false/)
    expect(problemsOf({ ...external, MQTT_DEVICE_AUTH: 'http' }).join(' ')).toMatch(/MQTT_AUTH_SECRET: required/)
    expect(problemsOf({ ...external, MQTT_DEVICE_AUTH: 'http', MQTT_AUTH_SECRET: 'short' }).join(' ')).toMatch(
      /^MQTT_AUTH_SECRET/,
    )
  })
})
