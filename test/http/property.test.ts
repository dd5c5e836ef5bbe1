import fc from 'fast-check'
import { describe, expect } from 'vitest'
import { ERRORS } from '../../src/domain/errors.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { ADMIN_KEY, bearer, raw, withLatchkey, type Workspace } from './helpers.js'

/**
 * Property-based tests over every route's body and query on the three surfaces, seeded and bounded: whatever the
 * input, never a 5xx, always the surface's error shape, and never a change to another workspace.
 */
const it = withLatchkey({ ACTION_TIMEOUT_MS: '1000', LOCK_RESPONSE_WAIT_MS: '0' })

interface Route {
  method: string
  path: string
  keys: string[]
}

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype']

async function routes(t: TestLatchkey): Promise<Route[]> {
  type Operation = {
    parameters?: Array<{ name: string; in: string }>
    requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }
  }
  const doc = (await (await fetch(`${t.lk.httpUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, Operation>>
  }
  const out: Route[] = []
  for (const [path, operations] of Object.entries(doc.paths)) {
    // A Connect route's GET takes the same fields as its POST body.
    const bodyKeys = Object.values(operations).flatMap((op) =>
      Object.keys(op.requestBody?.content['application/json']?.schema.properties ?? {}),
    )
    for (const [method, op] of Object.entries(operations)) {
      const queryKeys = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)
      out.push({ method: method.toUpperCase(), path, keys: [...new Set([...bodyKeys, ...queryKeys])] })
    }
  }
  return out
}

interface World {
  a: Workspace & { tenantToken: string; deviceId: string }
  b: Workspace & { deviceId: string }
}

async function snapshot(t: TestLatchkey, b: Workspace): Promise<unknown> {
  const as = (path: string, body: unknown = {}) => t.call(path, body, b.apiKey).then((r) => [r.status, r.body])
  const get = (path: string, key: string) => raw(t, { path, headers: bearer(key) }).then((r) => [r.status, r.body])
  return {
    devices: await as('/devices/list'),
    events: await as('/events/list', { since: '2000-01-01' }),
    webhooks: await as('/webhooks/list'),
    attempts: await as('/action_attempts/list'),
    workspace: await as('/workspaces/get'),
    outpost: await get(`/api/v1/attempts?tenant_id=${b.workspaceId}`, ADMIN_KEY),
    v1: await get(`/v1/tenants/${b.workspaceId}/deliveries`, b.apiKey),
  }
}

function valueArb(world: World): fc.Arbitrary<unknown> {
  const ids = fc.constantFrom(world.a.deviceId, world.b.deviceId, world.a.workspaceId, world.b.workspaceId, 'x', '')
  const text = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.constantFrom(
      '9999-12-31T23:59:59-23:59',
      '2026-01-01',
      'true',
      '1',
      '-1',
      'NaN',
      '*',
      'lock.*',
      'http://127.0.0.1:1/x',
    ),
  )
  const scalar = fc.oneof(ids, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null))
  return fc.oneof(
    { weight: 4, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...PROTOTYPE_KEYS)), scalar, {
        maxKeys: 4,
      }),
    },
  )
}

function inputArb(route: Route, world: World): fc.Arbitrary<Array<[string, unknown]>> {
  const key = fc.oneof(
    { weight: 6, arbitrary: route.keys.length > 0 ? fc.constantFrom(...route.keys) : fc.constant('x') },
    { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  )
  return fc.array(fc.tuple(key, valueArb(world)), { maxLength: 6 })
}

function pathParamArb(world: World): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(world.a.workspaceId, world.b.workspaceId, world.a.deviceId, world.b.deviceId, 'x'),
    fc.string({ minLength: 1, maxLength: 12 }).map(encodeURIComponent),
    fc.constantFrom('%E0%A4%A', '%ED%A0%80', '%00', '..'),
  )
}

function queryString(entries: Array<[string, unknown]>, raw: string): string {
  const params = new URLSearchParams()
  for (const [k, v] of entries) {
    for (const item of Array.isArray(v) ? v : [v])
      params.append(k, typeof item === 'object' ? JSON.stringify(item) : String(item))
  }
  const text = params.toString()
  return `?${text}${raw ? `${text ? '&' : ''}${raw}` : ''}`
}

function bodyOf(entries: Array<[string, unknown]>): string {
  // Built as text so that __proto__ and lone surrogates reach the server as sent.
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`
}

function expectShape(route: Route, res: { status: number; body: unknown; headers: Headers; text: string }) {
  const where = `${route.method} ${route.path} → ${res.status} ${res.text.slice(0, 300)}`
  expect(res.status, where).toBeLessThan(500)
  if (res.status < 400) return
  expect(res.headers.get('seam-request-id'), where).toBeTruthy()
  if (route.path.startsWith('/api/v1/')) {
    expect(res.body, where).toMatchObject({ message: expect.any(String) })
  } else if (route.path.startsWith('/v1/')) {
    expect(res.headers.get('content-type'), where).toMatch(/^application\/problem\+json/)
    expect(res.body, where).toMatchObject({ status: res.status, instance: res.headers.get('seam-request-id') })
  } else {
    const body = res.body as { ok: boolean; error: { type: string } }
    expect(body.ok, where).toBe(false)
    expect(Object.keys(ERRORS), where).toContain(body.error.type)
  }
}

async function setUp(t: TestLatchkey, b: Workspace): Promise<World> {
  const aDevice = await t.call('/devices/create', { name: 'a door', custom_metadata: { k: 'v' } })
  const bDevice = await t.call('/devices/create', { name: 'b door', custom_metadata: { k: 'v' } }, b.apiKey)
  const token = await raw(t, { path: `/api/v1/tenants/${t.workspaceId}/token`, headers: bearer(ADMIN_KEY) })
  return {
    a: {
      apiKey: t.apiKey,
      workspaceId: t.workspaceId,
      tenantToken: (token.body as { token: string }).token,
      deviceId: aDevice.body.device.device_id,
    },
    b: { ...b, deviceId: bDevice.body.device.device_id },
  }
}

async function fuzz(t: TestLatchkey, world: World, surface: (route: Route) => boolean, numRuns: number, seed: number) {
  const all = (await routes(t)).filter(surface)
  expect(all.length).toBeGreaterThan(0)
  const request = fc.constantFrom(...all).chain((route) =>
    fc.record({
      route: fc.constant(route),
      input: inputArb(route, world),
      params: fc.array(pathParamArb(world), { minLength: 4, maxLength: 4 }),
      rawQuery: fc.constantFrom('', '', '', 'x=%E0%A4%A', '%ZZ=1', 'limit=1&limit=2'),
    }),
  )
  await fc.assert(
    fc.asyncProperty(request, async ({ route, input, params, rawQuery }) => {
      let i = 0
      const path = route.path.replace(/\{[a-z_]+\}/g, () => params[i++] ?? 'x')
      // Workspace A's own credentials: the Outpost dialect takes A's tenant token.
      const key = route.path.startsWith('/api/v1/') ? world.a.tenantToken : world.a.apiKey
      const res =
        route.method === 'GET'
          ? await raw(t, { path: `${path}${queryString(input, rawQuery)}`, headers: bearer(key) })
          : await raw(t, {
              method: route.method,
              path,
              headers: { ...bearer(key), 'content-type': 'application/json' },
              body: bodyOf(input),
            })
      expectShape(route, res)
    }),
    { seed, numRuns, endOnFailure: true },
  )
}

describe('every route, any input (property-based)', () => {
  it('Connect API: never a 5xx, the Seam error shape, never a change to another workspace', async ({ t, b }) => {
    const world = await setUp(t, b)
    const before = await snapshot(t, b)
    await fuzz(t, world, (r) => !r.path.startsWith('/api/v1/') && !r.path.startsWith('/v1/'), 250, 20261126)
    expect(await snapshot(t, b)).toEqual(before)
  })

  it('Outpost and v1 dialects: never a 5xx, their error shapes, never a change to another workspace', async ({
    t,
    b,
  }) => {
    const world = await setUp(t, b)
    const before = await snapshot(t, b)
    await fuzz(t, world, (r) => r.path.startsWith('/api/v1/') || r.path.startsWith('/v1/'), 200, 1126)
    expect(await snapshot(t, b)).toEqual(before)
  })
})
