import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect } from 'vitest'
import { Instant } from '../../src/http/instant.js'
import { createDevice } from '../helpers/devices.js'
import { ADMIN_KEY, bearer, raw, withLatchkey } from './helpers.js'

const it = withLatchkey()
const itWithPublicUrl = withLatchkey({ PUBLIC_URL: 'https://locks.example.com/latchkey/' })

const PROTOTYPE_KEYS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']

/** Every GET route of the three surfaces, from /openapi.json, with path parameters filled in. */
async function getRoutes(baseUrl: string, workspaceId: string): Promise<string[]> {
  const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as { paths: Record<string, object> }
  return Object.entries(doc.paths)
    .filter(([, methods]) => 'get' in methods)
    .map(([path]) => path.replace('{tenant_id}', workspaceId).replace(/\{[a-z_]+\}/g, 'x'))
}

describe('hostile HTTP input', () => {
  it('ignores query keys named like Object.prototype properties on every GET route', async ({ t }) => {
    // Scenario: ?constructor=1 (and the like) on any GET route never answers 500; the key is ignored.
    const routes = await getRoutes(t.lk.httpUrl, t.workspaceId)
    expect(routes.length).toBeGreaterThan(15)
    for (const route of routes) {
      for (const key of PROTOTYPE_KEYS) {
        for (const token of [t.apiKey, ADMIN_KEY]) {
          const res = await raw(t, { path: `${route}?${key}=1&${key}=2`, headers: bearer(token) })
          expect(res.status, `${route}?${key}`).toBeLessThan(500)
        }
      }
    }
    const listed = await raw(t, { path: '/devices/list?constructor=1&__proto__=x', headers: bearer(t.apiKey) })
    expect(listed.status).toBe(200)
  })

  it('never echoes an invalid Host in next_page_url', async ({ t }) => {
    // Scenario: a Host that is no host (`a b`, `[::1`, `@evil`) → 200 with a relative next_page_url; a valid one
    // is used as is.
    await createDevice(t, 'one')
    await createDevice(t, 'two')
    for (const host of ['a b', '[::1', '@evil', 'evil.com@x', 'x/y']) {
      const res = await raw(t, { path: '/devices/list?limit=1', headers: { ...bearer(t.apiKey), host } })
      expect(res.status, host).toBe(200)
      const next = (res.body as { pagination: { next_page_url: string } }).pagination.next_page_url
      expect(next, host).toMatch(/^\/devices\/list\?limit=1&page_cursor=/)
    }
    // HTTP/1.0 may send no Host at all.
    const url = new URL(t.lk.httpUrl)
    const socket = connect(Number(url.port), url.hostname)
    // write, not end: a half-closed socket may be closed before a slower store answers.
    socket.write(`GET /devices/list?limit=1 HTTP/1.0\r\nAuthorization: Bearer ${t.apiKey}\r\n\r\n`)
    let reply = ''
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()))
    await once(socket, 'close')
    expect(reply).toMatch(/^HTTP\/1\.1 200/)
    expect(reply).toContain('"next_page_url":"/devices/list?limit=1&page_cursor=')
    const valid = await raw(t, {
      path: '/devices/list?limit=1',
      headers: { ...bearer(t.apiKey), host: 'locks.local:8080' },
    })
    expect((valid.body as { pagination: { next_page_url: string } }).pagination.next_page_url).toMatch(
      /^http:\/\/locks\.local:8080\/devices\/list\?limit=1&page_cursor=/,
    )
  })

  itWithPublicUrl('builds next_page_url on PUBLIC_URL whatever the Host', async ({ t }) => {
    // Scenario: PUBLIC_URL set → every next_page_url starts with it, the Host header is not read.
    await createDevice(t, 'one')
    await createDevice(t, 'two')
    for (const host of ['@evil', 'other.example']) {
      const res = await raw(t, { path: '/locks/list?limit=1', headers: { ...bearer(t.apiKey), host } })
      expect((res.body as { pagination: { next_page_url: string } }).pagination.next_page_url).toMatch(
        /^https:\/\/locks\.example\.com\/latchkey\/locks\/list\?limit=1&page_cursor=/,
      )
    }
  })

  it('applies the custom_metadata limits on create and update', async ({ t }) => {
    // Scenario: 51 keys, a 41-character key, a 501-character value, a number, an object or a __proto__ key →
    // 400 invalid_input on create and on update; 50 keys of 40 characters with 500-character values are taken.
    const device = await createDevice(t)
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`.padEnd(40, 'x'), true]))
    const bad: Array<[string, unknown]> = [
      ['51 keys', many(51)],
      ['a long key', { ['k'.repeat(41)]: 'v' }],
      ['a long value', { k: 'v'.repeat(501) }],
      ['a number', { k: 1 }],
      ['an object', { k: { nested: 'v' } }],
      ['null', { k: null }],
      ['__proto__', JSON.parse('{"__proto__": "x", "k": "v"}')],
      ['__proto__ object', JSON.parse('{"__proto__": {"polluted": "yes"}}')],
    ]
    for (const [name, custom_metadata] of bad) {
      const body = JSON.stringify({ name: 'door', custom_metadata })
      const created = await raw(t, {
        method: 'POST',
        path: '/devices/create',
        headers: { ...bearer(t.apiKey), 'content-type': 'application/json' },
        body,
      })
      expect(created.status, name).toBe(400)
      expect((created.body as { error: { type: string } }).error.type, name).toBe('invalid_input')
      const updated = await raw(t, {
        method: 'POST',
        path: '/devices/update',
        headers: { ...bearer(t.apiKey), 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: device.deviceId, custom_metadata }),
      })
      expect(updated.status, name).toBe(400)
    }
    const full: Record<string, unknown> = many(50)
    full['k0'.padEnd(40, 'x')] = 'v'.repeat(500)
    expect((await t.call('/devices/create', { name: 'full', custom_metadata: full })).status).toBe(200)
    expect(
      (await t.call('/devices/update', { device_id: device.deviceId, custom_metadata: { constructor: 'ok' } })).status,
    ).toBe(200)
    const got = await t.call('/devices/get', { device_id: device.deviceId })
    expect(got.body.device.custom_metadata).toEqual({ constructor: 'ok' })
  })

  it('compares time filters as instants', async ({ t }) => {
    // Scenario: since 9999-12-31T23:59:59-23:59 (an instant in the year 10000) matches nothing, on POST and GET.
    await createDevice(t)
    const far = '9999-12-31T23:59:59-23:59'
    expect((await t.call('/events/list', {})).body.events.length).toBeGreaterThan(0)
    expect((await t.call('/events/list', { since: far })).body.events).toEqual([])
    const viaGet = await raw(t, { path: `/events/list?since=${encodeURIComponent(far)}`, headers: bearer(t.apiKey) })
    expect((viaGet.body as { events: unknown[] }).events).toEqual([])
    const before = await t.call('/devices/list', { created_before: '0000-01-01T00:00:00+23:59' })
    expect(before.body.devices).toEqual([])
    const outpost = await raw(t, {
      path: `/api/v1/attempts?time[gte]=${encodeURIComponent(far)}`,
      headers: bearer(ADMIN_KEY),
    })
    expect(outpost.status).toBe(200)
    expect(Instant.parse(far)).toBe('9999-12-31T23:59:59.999Z')
    expect(Instant.parse('0000-01-01T00:00:00+23:59')).toBe('0000-01-01T00:00:00.000Z')
    expect(Instant.parse('2026-01-01T10:00:00+02:00')).toBe('2026-01-01T08:00:00.000Z')
  })

  it('keeps each surface error shape for bad URLs, large bodies and malformed JSON', async ({ t }) => {
    // Scenario: fastify's own client errors answer in the shape of the surface the URL belongs to, with the id.
    const connect = await raw(t, { path: '/devices/%E0%A4%A', headers: bearer(t.apiKey) })
    expect(connect.status).toBe(400)
    expect(connect.body).toMatchObject({ ok: false, error: { type: 'invalid_input' } })
    expect((connect.body as { error: { request_id: string } }).error.request_id).toBe(
      connect.headers.get('seam-request-id'),
    )

    const outpost = await raw(t, { path: '/api/v1/attempts/%E0%A4%A', headers: bearer(ADMIN_KEY) })
    expect(outpost.status).toBe(400)
    expect(outpost.body).toEqual({ message: expect.any(String) })
    expect(outpost.headers.get('seam-request-id')).toBeTruthy()

    const v1 = await raw(t, { path: `/v1/tenants/%E0%A4%A/deliveries`, headers: bearer(t.apiKey) })
    expect(v1.status).toBe(400)
    expect(v1.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(v1.body).toMatchObject({ status: 400, instance: v1.headers.get('seam-request-id') })

    const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) })
    const json = { 'content-type': 'application/json' }
    const tooLarge = await raw(t, {
      method: 'POST',
      path: '/devices/create',
      headers: { ...bearer(t.apiKey), ...json },
      body: big,
    })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.body).toMatchObject({ ok: false, error: { type: 'payload_too_large' } })
    const outpostLarge = await raw(t, {
      method: 'POST',
      path: '/api/v1/retry',
      headers: { ...bearer(ADMIN_KEY), ...json },
      body: big,
    })
    expect(outpostLarge.status).toBe(413)
    expect(outpostLarge.body).toEqual({ message: expect.any(String) })

    const malformed = await raw(t, {
      method: 'POST',
      path: '/api/v1/retry',
      headers: { ...bearer(ADMIN_KEY), ...json },
      body: '{"event_id":',
    })
    expect(malformed.status).toBe(400)
    expect(malformed.body).toEqual({ message: 'The request body is not valid JSON' })
    const odd = await raw(t, {
      method: 'POST',
      path: '/devices/list',
      headers: { ...bearer(t.apiKey), 'content-type': 'text/plain; charset=bogus' },
      body: '{}',
    })
    expect(odd.status).toBeLessThan(500)
  })

  it('takes the first of a repeated query parameter on every surface', async ({ t }) => {
    // Scenario: ?limit=1&limit=2 → the first value, never "expected number, received NaN".
    await createDevice(t, 'one')
    await createDevice(t, 'two')
    const v1 = await raw(t, {
      path: `/v1/tenants/${t.workspaceId}/deliveries?limit=1&limit=2&status=failed&status=delivered`,
      headers: bearer(t.apiKey),
    })
    expect(v1.status, v1.text).toBe(200)
    const outpost = await raw(t, {
      path: '/api/v1/attempts?limit=1&limit=2&dir=asc&dir=desc',
      headers: bearer(ADMIN_KEY),
    })
    expect(outpost.status, outpost.text).toBe(200)
    const connect = await raw(t, { path: '/devices/list?limit=1&limit=2', headers: bearer(t.apiKey) })
    expect(connect.status).toBe(200)
    expect((connect.body as { devices: unknown[] }).devices).toHaveLength(1)
  })

  it('refuses lone surrogates with 400 and keeps surrogate pairs', async ({ t }) => {
    // Scenario: "\ud800" in a body → 400 invalid_input (Connect) / 400 {message} (Outpost); in a path → 400
    // problem+json (v1); "😀" as an escaped pair round-trips.
    const json = { 'content-type': 'application/json' }
    const lone = await raw(t, {
      method: 'POST',
      path: '/devices/create',
      headers: { ...bearer(t.apiKey), ...json },
      body: '{"name":"door \\ud800"}',
    })
    expect(lone.status).toBe(400)
    expect(lone.body).toMatchObject({ error: { type: 'invalid_input' } })
    const loneKey = await raw(t, {
      method: 'POST',
      path: '/devices/create',
      headers: { ...bearer(t.apiKey), ...json },
      body: '{"name":"door","custom_metadata":{"\\udc00":"v"}}',
    })
    expect(loneKey.status).toBe(400)
    const outpost = await raw(t, {
      method: 'POST',
      path: '/api/v1/retry',
      headers: { ...bearer(ADMIN_KEY), ...json },
      body: '{"event_id":"\\ud800","destination_id":"x"}',
    })
    expect(outpost.status).toBe(400)
    expect(outpost.body).toEqual({ message: expect.stringMatching(/surrogate/) })
    const v1 = await raw(t, { path: '/v1/tenants/%ED%A0%80/deliveries', headers: bearer(t.apiKey) })
    expect(v1.status).toBe(400)
    expect(v1.headers.get('content-type')).toMatch(/problem\+json/)

    const pair = await raw(t, {
      method: 'POST',
      path: '/devices/create',
      headers: { ...bearer(t.apiKey), ...json },
      body: '{"name":"door \\ud83d\\ude00"}',
    })
    expect(pair.status).toBe(200)
    expect((pair.body as { device: { display_name: string } }).device.display_name).toBe('door 😀')
  })
})
