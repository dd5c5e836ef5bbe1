import { describe, expect } from 'vitest'
import { createDevice } from '../helpers/devices.js'
import { ADMIN_KEY, it as base } from '../helpers/latchkey.js'
import { queryTestDatabase } from '../helpers/store.js'

/** `latchkey` plus `other`: a second workspace on it, named Other. */
const it = base.extend<{ other: { apiKey: string; workspaceId: string } }>({
  other: async ({ latchkey }, use) => {
    const created = await latchkey.call('/workspaces/create', { name: 'Other' }, ADMIN_KEY)
    await use({ apiKey: created.body.api_key.token, workspaceId: created.body.workspace.workspace_id })
  },
})

describe('Connect API conventions', () => {
  it.for([
    ['no key', null],
    ['a wrong key', 'seam_0wrongwrongwrongwrongwrongwro'],
    ['a malformed header', 'Basic abc'],
  ] as const)('answers %s with 401 unauthorized', async ([, key], { latchkey: t }) => {
    // Scenario: missing or wrong credentials → 401 in the Seam error envelope, with the request id.
    const res = await t.call('/devices/list', {}, key)
    expect(res.status).toBe(401)
    expect(res.body).toMatchObject({ ok: false, error: { type: 'unauthorized', message: expect.any(String) } })
    expect(res.body.error.request_id).toBe(res.headers.get('seam-request-id'))
  })

  it("never shows one workspace's devices or attempts to another", async ({ latchkey: t, other }) => {
    // Scenario: B's key on A's device → 404 device_not_found for every route; A's device never in B's lists.
    const device = await createDevice(t)
    const asB = (path: string, body: unknown) => t.call(path, body, other.apiKey)
    for (const path of [
      '/devices/get',
      '/locks/get',
      '/devices/delete',
      '/devices/rotate_credentials',
      '/devices/update',
      '/locks/lock_door',
      '/locks/unlock_door',
    ]) {
      const res = await asB(path, { device_id: device.deviceId })
      expect(res.status, path).toBe(404)
      expect(res.body.error.type, path).toBe('device_not_found')
    }
    expect((await asB('/devices/list', {})).body.devices).toEqual([])
    expect((await asB('/locks/list', {})).body.locks).toEqual([])
    expect((await asB('/devices/list', { device_ids: [device.deviceId] })).body.devices).toEqual([])
    const attempt = await t.call('/locks/lock_door', { device_id: device.deviceId })
    const foreign = await asB('/action_attempts/get', {
      action_attempt_id: attempt.body.action_attempt.action_attempt_id,
    })
    expect(foreign.status).toBe(404)
    expect(foreign.body.error.type).toBe('action_attempt_not_found')
    expect((await asB('/action_attempts/list', {})).body.action_attempts).toEqual([])
    // A's device is untouched by B's attempts.
    expect((await t.call('/devices/get', { device_id: device.deviceId })).status).toBe(200)
  })

  it('treats an empty body as {} whatever its content type', async ({ latchkey: t }) => {
    // Scenario: the SDK sends parameterless calls as an empty form-encoded body.
    for (const type of ['application/x-www-form-urlencoded', 'application/json', 'text/plain']) {
      const res = await fetch(`${t.lk.httpUrl}/devices/list`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': type },
        body: '',
      })
      expect(res.status, type).toBe(200)
    }
    const none = await fetch(`${t.lk.httpUrl}/devices/list`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}` },
    })
    expect(none.status).toBe(200)
  })

  it('rejects malformed JSON and invalid fields with invalid_input and validation_errors', async ({ latchkey: t }) => {
    // Scenario: bad JSON → 400; a wrong type → 400 naming the field.
    const bad = await fetch(`${t.lk.httpUrl}/devices/create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' },
      body: '{"name":',
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_input')
    const wrong = await t.call('/locks/lock_door', { device_id: 'x', timeout_ms: 5 })
    expect(wrong.status).toBe(400)
    expect(wrong.body.error.validation_errors.timeout_ms._errors).toHaveLength(1)
    const cursor = await t.call('/devices/list', { page_cursor: 'garbage' })
    expect(cursor.status).toBe(400)
  })

  it('puts seam-request-id on every response, unknown routes included', async ({ latchkey: t }) => {
    // Scenario: 200, 401 and 404 responses all carry the header.
    for (const res of [
      await fetch(`${t.lk.httpUrl}/healthz`),
      await fetch(`${t.lk.httpUrl}/nope`),
      await fetch(`${t.lk.httpUrl}/devices/list`, { method: 'POST' }),
    ]) {
      expect(res.headers.get('seam-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    }
  })

  it('answers internal failures with a detail-free 500', async ({ latchkey: t }) => {
    // Scenario: the table under a route disappears (another process drops it) → 500 without the SQL error.
    const device = await createDevice(t)
    await queryTestDatabase(t.dataDir, 'DROP TABLE action_attempts')
    const res = await t.call('/locks/lock_door', { device_id: device.deviceId })
    expect(res.status).toBe(500)
    expect(res.body.error).toEqual({
      type: 'internal_server_error',
      message: 'Internal server error',
      request_id: expect.any(String),
    })
    expect(JSON.stringify(res.body)).not.toMatch(/action_attempts|SQLITE|relation/i)
    expect((await fetch(`${t.lk.httpUrl}/healthz`)).status).toBe(200)
  })

  it('restricts admin routes to the admin key and lets it act on any workspace', async ({ latchkey: t, other }) => {
    // Scenario: a workspace key cannot list workspaces; the admin can, and names a workspace with seam-workspace.
    expect((await t.call('/workspaces/list', {})).status).toBe(401)
    expect((await t.call('/workspaces/create', { name: 'x' })).status).toBe(401)
    const all = await t.call('/workspaces/list', {}, ADMIN_KEY)
    expect(all.body.workspaces.map((w: { workspace_id: string }) => w.workspace_id).sort()).toEqual(
      [t.workspaceId, other.workspaceId].sort(),
    )
    const device = await createDevice(t)
    const viaAdmin = await t.call('/devices/get', { device_id: device.deviceId }, ADMIN_KEY, {
      'seam-workspace': t.workspaceId,
    })
    expect(viaAdmin.body.device.device_id).toBe(device.deviceId)
    const wrongWs = await t.call('/devices/get', { device_id: device.deviceId }, ADMIN_KEY, {
      'seam-workspace': other.workspaceId,
    })
    expect(wrongWs.status).toBe(404)
    const unknownWs = await t.call('/devices/create', { name: 'x' }, ADMIN_KEY, {
      'seam-workspace': 'f0000000-0000-4000-8000-000000000000',
    })
    expect(unknownWs.status).toBe(404)
    expect(unknownWs.body.error.type).toBe('workspace_not_found')
    const noWs = await t.call('/devices/get', { device_id: device.deviceId }, ADMIN_KEY)
    expect(noWs.status).toBe(400)
    expect((await t.call('/workspaces/get', {}, other.apiKey)).body.workspace.name).toBe('Other')
    expect((await t.call('/workspaces/get', { workspace_id: t.workspaceId }, other.apiKey)).status).toBe(404)
  })

  it('creates and deletes API keys; a deleted key stops working', async ({ latchkey: t, other }) => {
    // Scenario: api_keys/create → the new key works; api_keys/delete → 401; another workspace cannot delete it.
    const created = await t.call('/api_keys/create', { name: 'ci' })
    const key = created.body.api_key
    expect(key.token).toMatch(/^seam_/)
    expect((await t.call('/devices/list', {}, key.token)).status).toBe(200)
    expect((await t.call('/api_keys/delete', { api_key_id: key.api_key_id }, other.apiKey)).status).toBe(404)
    expect((await t.call('/api_keys/delete', { api_key_id: key.api_key_id })).status).toBe(200)
    expect((await t.call('/devices/list', {}, key.token)).status).toBe(401)
  })

  it('serves health, readiness and an OpenAPI document generated from the route schemas', async ({ latchkey: t }) => {
    // Scenario: /healthz 200, /readyz 200 once connected, /openapi.json lists the Connect routes with their bodies.
    expect((await fetch(`${t.lk.httpUrl}/healthz`)).status).toBe(200)
    expect((await fetch(`${t.lk.httpUrl}/readyz`)).status).toBe(200)
    const doc = (await (await fetch(`${t.lk.httpUrl}/openapi.json`)).json()) as {
      openapi: string
      paths: Record<string, Record<string, { requestBody?: unknown }>>
    }
    expect(doc.openapi).toMatch(/^3\./)
    expect(doc.paths['/locks/lock_door']?.post?.requestBody).toBeDefined()
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/devices/create', '/devices/list', '/action_attempts/get', '/workspaces/create']),
    )
    expect(JSON.stringify(doc.paths['/locks/lock_door'])).toContain('timeout_ms')
  })
})
