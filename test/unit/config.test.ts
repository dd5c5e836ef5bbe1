import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { describeConfig, loadConfig } from '../../src/config.js'
import { problemsOf } from '../helpers/config.js'

describe('configuration', () => {
  it('applies the documented defaults to an empty environment', () => {
    // Scenario: no variables at all → embedded defaults of docs/configuration.md.
    const config = loadConfig({})
    expect(config).toMatchObject({
      PORT: 3000,
      MQTT_PORT: 1883,
      DATA_DIR: './data',
      EMBEDDED_BROKER: true,
      ACTION_TIMEOUT_MS: 8000,
      LOCK_RESPONSE_WAIT_MS: 500,
    })
    expect(config.WEBHOOK_RETRY_SCHEDULE).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000])
  })

  it('names every invalid variable in one error', () => {
    // Scenario: several bad values at once → each is named with its problem.
    const bad = {
      PORT: 'abc',
      MQTT_PORT: '70000',
      EMBEDDED_BROKER: 'maybe',
      ACTION_TIMEOUT_MS: '-5',
      LOCK_RESPONSE_WAIT_MS: 'soon',
      WEBHOOK_RETRY_SCHEDULE: '5,x',
      WEBHOOK_ALLOWED_CIDRS: 'localhost',
      LOG_LEVEL: 'loud',
      ADMIN_API_KEY: 'short',
      MQTT_URL: 'not a url',
    }
    const problems = problemsOf(bad)
    for (const name of Object.keys(bad))
      expect(
        problems.some((p) => p.startsWith(`${name}:`)),
        name,
      ).toBe(true)
    expect(new Set(problems.map((p) => p.split(':')[0]))).toEqual(new Set(Object.keys(bad)))
  })

  it('requires the broker URL and service password when the embedded broker is off', () => {
    // Scenario: EMBEDDED_BROKER=false without MQTT_URL → refused with both names.
    expect(problemsOf({ EMBEDDED_BROKER: 'false' }).join(' ')).toMatch(/MQTT_URL.*MQTT_SERVICE_PASSWORD/)
  })

  it('takes INSTANCE_ID as given, or a random one per load', () => {
    // Scenario: INSTANCE_ID=a-1 → kept; unset → a different random id each time; a space in it → refused by name.
    expect(loadConfig({ INSTANCE_ID: 'a-1' }).INSTANCE_ID).toBe('a-1')
    const first = loadConfig({}).INSTANCE_ID
    expect(first).toMatch(/^[a-f0-9]{12}$/)
    expect(loadConfig({}).INSTANCE_ID).not.toBe(first)
    expect(problemsOf({ INSTANCE_ID: 'a b' }).join(' ')).toMatch(/^INSTANCE_ID:/)
  })

  it('with DATABASE_URL, wants a delivery lease longer than the webhook timeout', () => {
    // Scenario: lease 30 s by default; on PostgreSQL a lease of 15 s with the 15 s webhook timeout → refused by name
    // (a slow attempt would lose its lease mid-send); 16 s → accepted; SQLite has no leases → any value passes.
    const db = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db' }
    expect(loadConfig(db).DELIVERY_LEASE_MS).toBe(30_000)
    expect(problemsOf({ ...db, DELIVERY_LEASE_MS: '15000' }).join(' ')).toMatch(/^DELIVERY_LEASE_MS:/)
    expect(loadConfig({ ...db, DELIVERY_LEASE_MS: '16000' }).DELIVERY_LEASE_MS).toBe(16_000)
    expect(loadConfig({ DELIVERY_LEASE_MS: '1000' }).DELIVERY_LEASE_MS).toBe(1000)
  })

  it('treats empty variables as unset', () => {
    // Scenario: PORT= (empty) → the default, not an error.
    expect(loadConfig({ PORT: '' }).PORT).toBe(3000)
  })

  it('is documented row for row in docs/configuration.md', () => {
    // Scenario: the docs table and the schema list the same variables, defaults and descriptions.
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
    const rows = doc
      .split('\n')
      .filter((line) => /^\| `[A-Z_]+` \|/.test(line))
      .map((line) => line)
    const expected = describeConfig().map((v) => `| \`${v.name}\` | \`${v.default}\` | ${v.description} |`)
    expect(rows).toEqual(expected)
  })

  it('takes the TLS files as a pair, and plaintext off only with them', () => {
    // Scenario: a certificate without its key, or MQTT_PLAINTEXT=false without TLS → refused, naming the variable.
    expect(problemsOf({ TLS_CERT_FILE: '/etc/cert.pem' }).join(' ')).toMatch(/TLS_CERT_FILE.*TLS_KEY_FILE/)
    expect(problemsOf({ TLS_KEY_FILE: '/etc/key.pem' }).join(' ')).toMatch(/TLS_CERT_FILE.*TLS_KEY_FILE/)
    expect(problemsOf({ MQTT_PLAINTEXT: 'false' }).join(' ')).toMatch(/^MQTT_PLAINTEXT:/)
    const tls = loadConfig({ TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem', MQTT_PLAINTEXT: 'false' })
    expect(tls).toMatchObject({ MQTTS_PORT: 8883, MQTT_PLAINTEXT: false, MQTT_MAX_PACKET_BYTES: 20_480 })
  })
})
