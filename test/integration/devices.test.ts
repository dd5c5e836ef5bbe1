import { describe, expect } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { createDevice, waitForProps } from '../helpers/devices.js'
import { it } from '../helpers/latchkey.js'
import { connectRaw, end, publish } from '../helpers/mqtt.js'

describe('device registry', () => {
  it('creates a lock and returns its MQTT credentials once', async ({ latchkey: t }) => {
    // Scenario: /devices/create → a Seam-shaped device, offline, with credentials for the embedded broker.
    const res = await t.call('/devices/create', { name: 'Back door', custom_metadata: { unit: '4B' } })
    expect(res.status).toBe(200)
    const { device, mqtt_credentials: creds } = res.body
    expect(device).toMatchObject({
      device_type: 'mqtt_lock',
      display_name: 'Back door',
      workspace_id: t.workspaceId,
      is_managed: true,
      capabilities_supported: ['lock', 'battery'],
      can_remotely_lock: true,
      can_remotely_unlock: true,
      custom_metadata: { unit: '4B' },
      errors: [{ error_code: 'device_offline' }],
      properties: { name: 'Back door', online: false },
    })
    expect(creds).toMatchObject({
      client_id: device.device_id,
      username: device.device_id,
      topic_root: `latchkey/v1/devices/${device.device_id}/`,
    })
    expect(creds.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    expect(Buffer.from(creds.password, 'base64url')).toHaveLength(32)
    const fetched = await t.call('/devices/get', { device_id: device.device_id })
    expect(JSON.stringify(fetched.body)).not.toContain(creds.password)
  })

  it('follows online, state and the will of an abruptly dropped lock', async ({ latchkey: t, lock }) => {
    // Scenario: a simulated lock connects (online, state), is killed (will → offline), comes back.
    const { lock: sim, device } = await lock(t, {
      initialState: { locked: true, battery_level: 0.8, firmware_version: '1.2.3' },
    })
    const props = await waitForProps(t, device.deviceId, (p) => p.locked === true && p.battery_level === 0.8)
    expect(props).toMatchObject({ online: true, firmware_version: '1.2.3', battery: { level: 0.8, status: 'good' } })
    expect(props.last_seen_at).toEqual(expect.any(String))

    await sim.setDoorOpen(true)
    await waitForProps(t, device.deviceId, (p) => p.door_open === true)
    await sim.manualUnlock()
    await waitForProps(t, device.deviceId, (p) => p.locked === false)

    sim.kill()
    await waitForProps(t, device.deviceId, (p) => p.online === false)
    const offline = await t.call('/devices/get', { device_id: device.deviceId })
    expect(offline.body.device.errors).toEqual([expect.objectContaining({ error_code: 'device_offline' })])

    await sim.start()
    await waitForProps(t, device.deviceId, (p) => p.online === true)
  })

  it('drops malformed and oversize payloads, counts them, and stays healthy', async ({ latchkey: t }) => {
    // Scenario: garbage on every uplink topic → dropped and counted; a good state after it still lands.
    const device = await createDevice(t)
    const client = await connectRaw(device.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    const garbage: Array<[Parameters<typeof deviceTopic>[1], string | Buffer]> = [
      ['state', 'not json'],
      ['state', JSON.stringify({ locked: 'yes' })],
      ['acks', JSON.stringify({ command_id: 'nope', status: 'success' })],
      ['events', JSON.stringify({ type: 'lock.exploded', occurred_at: new Date().toISOString() })],
      ['status', 'sleeping'],
      ['state', Buffer.alloc(17 * 1024, 0x7b)],
      ['acks', Buffer.from([0xff, 0xfe, 0x00])],
    ]
    for (const [kind, payload] of garbage) await publish(client, deviceTopic(device.deviceId, kind), payload)
    await publish(client, deviceTopic(device.deviceId, 'state'), JSON.stringify({ locked: true, battery_level: 0.5 }))
    await waitForProps(t, device.deviceId, (p) => p.battery_level === 0.5)
    const dropped = t.lk.metrics.total('mqtt_messages_dropped_total')
    expect(dropped).toBe(garbage.length)
    expect(t.lk.metrics.get('mqtt_messages_dropped_total', { reason: 'oversize' })).toBe(1)
    const metrics = await (await fetch(`${t.lk.httpUrl}/metrics`)).text()
    expect(metrics).toContain('latchkey_mqtt_messages_dropped_total{reason="malformed_state"} 2')
    expect((await fetch(`${t.lk.httpUrl}/healthz`)).status).toBe(200)
    await end(client)
  })

  it('lists with cursor pagination, filters by ids, updates and deletes', async ({ latchkey: t }) => {
    // Scenario: 5 devices paged 2 at a time; update renames; delete makes it 404.
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await createDevice(t, `lock ${i}`)).deviceId)
    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 5; page++) {
      const res = await t.call('/devices/list', { limit: 2, ...(cursor ? { page_cursor: cursor } : {}) })
      seen.push(...res.body.devices.map((d: { device_id: string }) => d.device_id))
      cursor = res.body.pagination.next_page_cursor
      expect(res.body.pagination.has_next_page).toBe(cursor !== null)
      if (!cursor) break
    }
    expect(seen).toEqual(ids)
    const some = await t.call('/locks/list', { device_ids: [ids[1], ids[3]] })
    expect(some.body.locks.map((d: { device_id: string }) => d.device_id)).toEqual([ids[1], ids[3]])

    expect(
      (await t.call('/devices/update', { device_id: ids[0], name: 'renamed', custom_metadata: { floor: '2' } })).status,
    ).toBe(200)
    const renamed = await t.call('/locks/get', { device_id: ids[0] })
    expect(renamed.body.device).toMatchObject({ display_name: 'renamed', custom_metadata: { floor: '2' } })

    expect((await t.call('/devices/delete', { device_id: ids[0] })).status).toBe(200)
    const gone = await t.call('/devices/get', { device_id: ids[0] })
    expect(gone.status).toBe(404)
    expect(gone.body.error.type).toBe('device_not_found')
  })

  it('answers read routes as GET with a query string', async ({ latchkey: t }) => {
    // Scenario: GET /devices/get?device_id=… and GET /devices/list?limit=1 behave like the POSTs.
    const device = await createDevice(t)
    await createDevice(t, 'second')
    const headers = { authorization: `Bearer ${t.apiKey}` }
    const one = await fetch(`${t.lk.httpUrl}/devices/get?device_id=${device.deviceId}`, { headers })
    expect(((await one.json()) as { device: { device_id: string } }).device.device_id).toBe(device.deviceId)
    const list = (await (await fetch(`${t.lk.httpUrl}/devices/list?limit=1`, { headers })).json()) as {
      devices: unknown[]
      pagination: { has_next_page: boolean; next_page_url: string }
    }
    expect(list.devices).toHaveLength(1)
    expect(list.pagination.has_next_page).toBe(true)
    const next = (await (await fetch(list.pagination.next_page_url, { headers })).json()) as {
      devices: Array<{ display_name: string }>
    }
    expect(next.devices.map((d) => d.display_name)).toEqual(['second'])
    // next_page_url keeps the filters of the call it continues.
    const third = await createDevice(t, 'third')
    const filtered = await t.call('/devices/list', { device_ids: [device.deviceId, third.deviceId], limit: 1 })
    const rest = (await (await fetch(filtered.body.pagination.next_page_url, { headers })).json()) as {
      devices: Array<{ device_id: string }>
    }
    expect(rest.devices.map((d) => d.device_id)).toEqual([third.deviceId])
  })
})
