import { describe, expect } from 'vitest'
import { copySqliteToPostgres } from '../../scripts/db-copy.js'
import { startLatchkey } from '../../src/latchkey.js'
import { twoTenants } from '../deliveries/helpers.js'
import { ADMIN_KEY, tempDataDir, testConfig } from '../helpers/latchkey.js'
import { dropTestDatabase, testDatabaseEnv } from '../helpers/store.js'
import { it } from '../webhooks/helpers.js'

interface Surface {
  httpUrl: string
}

/** Status and body of every list and get the three API surfaces answer, for two tenants and the admin. */
async function answers(
  lk: Surface,
  keys: { a: string; b: string },
  ids: { workspaces: string[]; devices: string[]; attempts: string[]; events: string[]; webhooks: string[] },
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  const seam = async (name: string, path: string, body: unknown, key: string) => {
    const res = await fetch(`${lk.httpUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    })
    out[name] = { status: res.status, body: await res.json() }
  }
  const get = async (path: string, key = ADMIN_KEY) => {
    const res = await fetch(`${lk.httpUrl}${path}`, { headers: { authorization: `Bearer ${key}` } })
    out[`GET ${path}`] = { status: res.status, body: await res.json() }
    return out[`GET ${path}`] as { body: Record<string, unknown> }
  }
  await seam('workspaces/list', '/workspaces/list', {}, ADMIN_KEY)
  for (const [tenant, key] of Object.entries(keys)) {
    await seam(`${tenant} workspaces/get`, '/workspaces/get', {}, key)
    await seam(`${tenant} devices/list`, '/devices/list', {}, key)
    await seam(`${tenant} devices/list page`, '/devices/list', { limit: 1 }, key)
    await seam(`${tenant} locks/list`, '/locks/list', {}, key)
    await seam(`${tenant} action_attempts/list`, '/action_attempts/list', {}, key)
    await seam(`${tenant} events/list`, '/events/list', { since: '2000-01-01T00:00:00.000Z' }, key)
    await seam(`${tenant} events/list page`, '/events/list', { since: '2000-01-01T00:00:00.000Z', limit: 2 }, key)
    await seam(`${tenant} webhooks/list`, '/webhooks/list', {}, key)
    for (const id of ids.devices) await seam(`${tenant} devices/get ${id}`, '/devices/get', { device_id: id }, key)
    for (const id of ids.attempts) {
      await seam(`${tenant} action_attempts/get ${id}`, '/action_attempts/get', { action_attempt_id: id }, key)
    }
    for (const id of ids.events) await seam(`${tenant} events/get ${id}`, '/events/get', { event_id: id }, key)
    for (const id of ids.webhooks) await seam(`${tenant} webhooks/get ${id}`, '/webhooks/get', { webhook_id: id }, key)
  }
  // Outpost dialect: every attempt, a page and its cursor, one attempt, one destination's attempts.
  const all = await get('/api/v1/attempts?include=event&include=response_data')
  await get('/api/v1/attempts?limit=3&dir=asc')
  await get('/api/v1/attempts?status=failed')
  const attempts = (all.body.models ?? all.body.data ?? []) as Array<{ id: string }>
  for (const attempt of attempts) await get(`/api/v1/attempts/${attempt.id}`)
  for (const id of ids.webhooks) await get(`/api/v1/tenants/${ids.workspaces[0]}/destinations/${id}/attempts`)
  // v1 dialect: each tenant's deliveries, a page, the pending ones, and each delivery.
  for (const tenant of ids.workspaces) {
    const listed = await get(`/v1/tenants/${tenant}/deliveries`)
    await get(`/v1/tenants/${tenant}/deliveries?limit=2`)
    await get(`/v1/tenants/${tenant}/deliveries?status=pending`)
    const deliveries = (listed.body.data ?? listed.body.deliveries ?? []) as Array<{ id: string }>
    for (const delivery of deliveries) await get(`/v1/tenants/${tenant}/deliveries/${delivery.id}`)
  }
  // Per-request ids and the server's own address are not stored data.
  return JSON.parse(
    JSON.stringify(out)
      .replaceAll(lk.httpUrl, 'BASE')
      .replace(/"request_id":"[^"]*"/g, '"request_id":"-"'),
  ) as Record<string, unknown>
}

describe('moving an installation from SQLite to PostgreSQL', () => {
  it('copies everything, and every list and get of the three surfaces answers as on SQLite', async ({ rig }) => {
    // Scenario: two tenants, webhooks with deliveries, retries and a scheduled retry, a lock and its attempts,
    // populated on SQLite through the API; copied; latchkey started on PostgreSQL at the same instant.
    const f = await twoTenants(rig, { DATABASE_URL: '' })
    const { lock, deviceId } = await rig.lock(f.t)
    const locked = await f.t.call('/locks/lock_door', { device_id: deviceId, sync: true })
    // The lock runs on the real clock, so it refuses a command from the fake clock's past: settled all the same.
    expect(locked.body.action_attempt.status).not.toBe('pending')
    await f.t.call('/locks/unlock_door', { device_id: deviceId, sync: true })
    await lock.stop()
    await rig.lock(f.t, {}, f.b.apiKey).then(({ lock: other }) => other.stop())
    await f.t.call('/webhooks/update', { webhook_id: f.hooks.flaky, event_types: ['device.added', 'lock.locked'] })

    const keys = { a: f.t.apiKey, b: f.b.apiKey }
    const collect = async (key: string, path: string, field: string, idField: string) =>
      (
        (await f.t.call(path, path === '/events/list' ? { since: '2000-01-01T00:00:00.000Z' } : {}, key)).body[
          field
        ] as Array<Record<string, string>>
      ).map((row) => row[idField] as string)
    const ids = {
      workspaces: [f.t.workspaceId, f.b.workspaceId],
      devices: [
        ...(await collect(keys.a, '/devices/list', 'devices', 'device_id')),
        ...(await collect(keys.b, '/devices/list', 'devices', 'device_id')),
      ],
      attempts: await collect(keys.a, '/action_attempts/list', 'action_attempts', 'action_attempt_id'),
      events: [
        ...(await collect(keys.a, '/events/list', 'events', 'event_id')),
        ...(await collect(keys.b, '/events/list', 'events', 'event_id')),
      ],
      webhooks: [f.hooks.all, f.hooks.flaky, f.hooks.other],
    }
    expect(ids.attempts.length).toBeGreaterThanOrEqual(2)
    const onSqlite = await answers(f.t.lk, keys, ids)
    const statuses = Object.values(onSqlite).map((answer) => (answer as { status: number }).status)
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThan(60)
    expect(statuses.every((status) => status === 200 || status === 404)).toBe(true)

    const targetDir = tempDataDir()
    rig.defer(async () => dropTestDatabase(targetDir))
    const url = testDatabaseEnv(targetDir).DATABASE_URL as string
    const lines: string[] = []
    const counts = await copySqliteToPostgres({ from: f.t.dataDir, to: url, log: (line) => lines.push(line) })
    expect(counts.delivery_attempts).toBeGreaterThan(f.attempts.length)
    expect(counts.attempt_history).toBeGreaterThanOrEqual(6)
    expect(lines.some((line) => /^ {2}delivery_attempts: \d+\/\d+$/.test(line))).toBe(true)
    expect(lines[lines.length - 1]).toMatch(/^verified: settings \d+, workspaces 2, /)
    // Refuses a database that already holds an installation.
    await expect(copySqliteToPostgres({ from: f.t.dataDir, to: url, log: () => {} })).rejects.toThrow(/not empty/)

    const onPostgres = await startLatchkey(
      testConfig(targetDir, { DATABASE_URL: url, WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_RETRY_SCHEDULE: '5' }),
      { clock: f.clock },
    )
    rig.defer(() => onPostgres.close())
    expect(onPostgres.bootstrap).toBeUndefined()
    const answered = await answers(onPostgres, keys, ids)
    expect(Object.keys(answered).length).toBeGreaterThan(40)
    expect(answered).toEqual(onSqlite)
  })
})
