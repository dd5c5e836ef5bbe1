import type { MqttClient } from 'mqtt'
import pg from 'pg'
import { expect } from 'vitest'
import { deviceTopic, type Command } from '../../devices/index.js'
import { startTestPostgres, type TestPostgres } from '../../scripts/pg-test-server.js'
import { externalBrokerEnv, it as base } from './external-broker.js'
import type { Mosquitto } from './mosquitto.js'
import { connectRaw, publish, subscribe } from './mqtt.js'

/**
 * What several instances share (docs/scale-out.md#several-instances), private to the test and stopped after it:
 * `postgres`, a PostgreSQL server of its own (whatever store the run is on); `createDatabase(name)`, an empty database
 * on it, answered with its URL; and `mosquitto` with dynamic security (test/helpers/external-broker.ts).
 */
export const it = base.extend<{ postgres: TestPostgres; createDatabase: (name: string) => Promise<string> }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  postgres: async ({}, use) => {
    const server = await startTestPostgres()
    try {
      await use(server)
    } finally {
      server.stop()
    }
  },
  createDatabase: async ({ postgres }, use) => {
    await use(async (name) => {
      const admin = new pg.Client({ connectionString: postgres.url })
      await admin.connect()
      try {
        await admin.query(`CREATE DATABASE ${name}`)
      } finally {
        await admin.end()
      }
      const url = new URL(postgres.url)
      url.pathname = `/${name}`
      return url.toString()
    })
  },
})

/** The environment of one instance `id` on the shared database and broker. */
export function instanceEnv(mosquitto: Mosquitto, databaseUrl: string, id: string): Record<string, string> {
  return { ...externalBrokerEnv(mosquitto), DATABASE_URL: databaseUrl, INSTANCE_ID: id }
}

/**
 * A device of the test's own on the broker at `url`, online (retained status) and subscribed to its commands.
 * `acks`: answers each command with one `success` ack at once, so each lock is one uplink ack; else never answers.
 */
export async function testDevice(
  url: string,
  deviceId: string,
  password: string,
  { acks }: { acks: boolean },
): Promise<MqttClient> {
  const client = await connectRaw(url, { clientId: deviceId, username: deviceId, password })
  client.on('message', (topic, payload) => {
    if (!acks || topic !== deviceTopic(deviceId, 'commands')) return
    const command = JSON.parse(payload.toString()) as Command
    void publish(
      client,
      deviceTopic(deviceId, 'acks'),
      JSON.stringify({ command_id: command.command_id, status: 'success' }),
    )
  })
  expect(await subscribe(client, deviceTopic(deviceId, 'commands'))).toBe(1)
  await publish(client, deviceTopic(deviceId, 'status'), 'online', true)
  return client
}
