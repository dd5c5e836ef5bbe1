import { describe, expect, it } from 'vitest'
import { hostForUrl, httpUrl, mqttUrls } from '../../src/compose/urls.js'

const embedded = { MQTT_URL: undefined, MQTT_PUBLIC_URL: undefined, MQTT_HOST: '0.0.0.0', MQTT_PORT: 1883 }

describe('URL derivation', () => {
  it('turns wildcard bind addresses into loopback and brackets IPv6', () => {
    // Scenario: each kind of bind address → the host a client can dial.
    expect(hostForUrl('0.0.0.0')).toBe('127.0.0.1')
    expect(hostForUrl('::')).toBe('127.0.0.1')
    expect(hostForUrl('::1')).toBe('[::1]')
    expect(hostForUrl('lock.example')).toBe('lock.example')
    expect(httpUrl('::1', 3000)).toBe('http://[::1]:3000')
  })

  it("uses the embedded broker's actual port, and MQTT_URL or MQTT_PUBLIC_URL when set", () => {
    // Scenario: embedded on port 0 bound to 54321; an external broker; an explicit public URL.
    expect(mqttUrls(embedded, 54321)).toEqual({ internal: 'mqtt://127.0.0.1:54321', public: 'mqtt://127.0.0.1:54321' })
    expect(mqttUrls({ ...embedded, MQTT_HOST: '::1' }, 54321).public).toBe('mqtt://[::1]:54321')
    const external = { ...embedded, MQTT_URL: 'mqtt://broker.internal:1883' }
    expect(mqttUrls(external, undefined)).toEqual({
      internal: 'mqtt://broker.internal:1883',
      public: 'mqtt://broker.internal:1883',
    })
    expect(mqttUrls({ ...external, MQTT_PUBLIC_URL: 'mqtts://locks.example:8883' }, undefined).public).toBe(
      'mqtts://locks.example:8883',
    )
  })
})
