import { randomUUID } from 'node:crypto'
import { describe, expect } from 'vitest'
import { connectDynsec, deviceRole } from '../../src/mqtt/dynsec.js'
import { createDevice } from '../helpers/devices.js'
import { it } from '../helpers/external-broker.js'
import { closed, connectRaw } from '../helpers/mqtt.js'

/** latchkey on an external mosquitto with MQTT_DEVICE_AUTH=dynsec: it provisions every device itself. */

describe('MQTT_DEVICE_AUTH=dynsec', () => {
  it('a created device connects to mosquitto with its credentials and locks end to end', async ({ external, lock }) => {
    // Scenario: /devices/create provisions the broker; the simulated lock connects there, comes online through the
    // orchestrator's subscription, and a sync lock succeeds on its ack.
    const t = await external()
    const { device } = await lock(t, { behaviour: { ackLatencyMs: 5 } })
    const res = await t.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
    expect(res.status).toBe(200)
    expect(res.body.action_attempt.status).toBe('success')
  })

  it('rotate_credentials and delete close the session on mosquitto and refuse the old secret', async ({
    external,
    mosquitto,
    defer,
  }) => {
    const t = await external()
    const a = await createDevice(t, 'A')
    const connect = async (password: string) => {
      const client = await connectRaw(mosquitto.url, { clientId: a.deviceId, username: a.deviceId, password })
      defer(() => client.end(true))
      return client
    }
    const first = await connect(a.password)
    const kicked = closed(first)
    const rotated = await t.call('/devices/rotate_credentials', { device_id: a.deviceId })
    expect(rotated.status).toBe(200)
    await kicked
    await expect(connect(a.password)).rejects.toThrow(/Not authorized/i)
    const second = await connect(rotated.body.mqtt_credentials.password)
    const deleted = closed(second)
    expect((await t.call('/devices/delete', { device_id: a.deviceId })).status).toBe(200)
    await deleted
    await expect(connect(rotated.body.mqtt_credentials.password)).rejects.toThrow(/Not authorized/i)
  })

  it('a broker that does not answer: create fails with 503 and leaves no device row', async ({
    external,
    mosquitto,
  }) => {
    // Scenario: mosquitto frozen → /devices/create answers 503 after the command timeout; the list is unchanged.
    const t = await external()
    mosquitto.pause()
    const res = await t.call('/devices/create', { name: 'during outage' })
    mosquitto.resume()
    expect(res.status).toBe(503)
    expect(res.body.error.type).toBe('service_unavailable')
    const list = await t.call('/devices/list', {})
    expect(list.body.devices).toEqual([])
  })

  it('start-up removes broker clients whose device is gone and keeps the others', async ({
    external,
    mosquitto,
    defer,
  }) => {
    const admin = await connectDynsec({
      url: mosquitto.url,
      username: mosquitto.admin.username,
      password: mosquitto.admin.password,
    })
    defer(() => admin.close())
    const orphan = randomUUID()
    await admin.provision(orphan, 'orphan-secret-0123456789')
    const t = await external()
    const kept = await createDevice(t, 'kept')
    const [gone, still] = await admin.send([
      { command: 'getClient', username: orphan },
      { command: 'getRole', rolename: deviceRole(kept.deviceId) },
    ])
    expect(gone?.error).toBe('Client not found')
    expect(still?.error).toBeUndefined()
  })
})
