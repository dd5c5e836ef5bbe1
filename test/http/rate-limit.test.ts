import { describe, expect } from 'vitest'
import { ADMIN_KEY, bearer, raw, withLatchkey } from './helpers.js'

const it = withLatchkey({ RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '3' })
const itOff = withLatchkey({ RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '0' })

describe('HTTP rate limits', () => {
  it('answers 429 rate_limited with Retry-After past the per-key limit, in each surface shape', async ({ t, b }) => {
    // Scenario: limit 5/min per key → the 6th request of a key is 429 in its surface's shape; other keys go on.
    // (The fixture already spent one admin request creating workspace b.)
    for (let i = 0; i < 5; i++)
      expect((await raw(t, { path: '/devices/list', headers: bearer(t.apiKey) })).status).toBe(200)
    const connect = await raw(t, { path: '/devices/list', headers: bearer(t.apiKey) })
    expect(connect.status).toBe(429)
    expect(connect.body).toMatchObject({ ok: false, error: { type: 'rate_limited' } })
    expect(Number(connect.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    // The same key is limited on every surface: the v1 API answers problem+json.
    const v1 = await raw(t, { path: `/v1/tenants/${t.workspaceId}/deliveries`, headers: bearer(t.apiKey) })
    expect(v1.status).toBe(429)
    expect(v1.headers.get('content-type')).toMatch(/problem\+json/)
    expect(v1.headers.get('retry-after')).toBeTruthy()

    for (let i = 0; i < 4; i++)
      expect((await raw(t, { path: '/api/v1/attempts', headers: bearer(ADMIN_KEY) })).status).toBe(200)
    const outpost = await raw(t, { path: '/api/v1/attempts', headers: bearer(ADMIN_KEY) })
    expect(outpost.status).toBe(429)
    expect(outpost.body).toEqual({ message: expect.any(String) })
    expect(outpost.headers.get('retry-after')).toBeTruthy()

    // Another key is not affected; health and metrics are exempt.
    expect((await raw(t, { path: '/devices/list', headers: bearer(b.apiKey) })).status).toBe(200)
    for (let i = 0; i < 10; i++) {
      expect((await raw(t, { path: '/healthz' })).status).toBe(200)
      expect((await raw(t, { path: '/metrics' })).status).toBe(200)
    }
    // Each refusal is counted: three per-key ones (Connect, v1, Outpost).
    expect(t.lk.metrics.get('http_rate_limited_total', { scope: 'api_key' })).toBe(3)
  })

  it('answers 429 to an address past its budget of failed authentications', async ({ t }) => {
    // Scenario: 3 failures/min per address → 401 ×3, then 429 rate_limited, and the address is refused before
    // its key is looked at, whichever surface it calls.
    const wrong = bearer('seam_wrongwrongwrongwrongwrongwrong')
    for (let i = 0; i < 3; i++) {
      const res = await raw(t, { path: '/devices/list', headers: wrong })
      expect(res.status).toBe(401)
      expect(res.body).toMatchObject({ error: { type: 'unauthorized' } })
    }
    const limited = await raw(t, { path: '/devices/list', headers: wrong })
    expect(limited.status).toBe(429)
    expect(limited.body).toMatchObject({ error: { type: 'rate_limited' } })
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await raw(t, { path: '/api/v1/attempts' })).status).toBe(429)
    expect((await raw(t, { path: `/v1/tenants/${t.workspaceId}/deliveries`, headers: bearer(t.apiKey) })).status).toBe(
      429,
    )
    expect((await raw(t, { path: '/healthz' })).status).toBe(200)
  })

  itOff('limits nothing when both limits are 0', async ({ t }) => {
    // Scenario: RATE_LIMIT_*=0 → 50 failures and 50 requests of one key all answer as without limits.
    for (let i = 0; i < 50; i++) expect((await raw(t, { path: '/devices/list' })).status).toBe(401)
    for (let i = 0; i < 50; i++)
      expect((await raw(t, { path: '/devices/list', headers: bearer(t.apiKey) })).status).toBe(200)
  })
})
