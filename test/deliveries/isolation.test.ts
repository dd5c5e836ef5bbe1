import { describe, expect } from 'vitest'
import { it } from '../webhooks/helpers.js'
import { get, outpost, post, twoTenants } from './helpers.js'

describe('tenant isolation on the delivery APIs', () => {
  it("gives B's tenant token and B's workspace key nothing of A's: 404 or 401 on list, get and retry", async ({
    rig,
  }) => {
    // Scenario: A's attempts and events, asked for with B's credentials on both dialects, answer as missing ones.
    const f = await twoTenants(rig)
    const a = f.t.workspaceId
    const mine = f.attempts.find((x) => x.workspace_id === a && x.webhook_id === f.hooks.all)
    if (!mine) throw new Error('fixture without an attempt of A')
    const tokenB = (await outpost(f.t).tenants.getToken(f.b.workspaceId)).token as string
    const missing = 'f0000000-0000-4000-8000-000000000000'

    // Outpost dialect, B's tenant token: A's tenant answers exactly as a tenant that does not exist.
    const asB = (path: string) => get(f.t, path, tokenB)
    for (const tenant of [a, missing]) {
      expect(await asB(`/api/v1/attempts?tenant_id=${tenant}`)).toMatchObject({
        status: 404,
        body: { message: 'tenant not found' },
      })
      expect(await asB(`/api/v1/tenants/${tenant}/destinations/${f.hooks.all}/attempts`)).toMatchObject({
        status: 404,
        body: { message: 'tenant not found' },
      })
      expect((await asB(`/api/v1/attempts/${mine.attempt_id}?tenant_id=${tenant}`)).status).toBe(404)
    }
    expect(await asB(`/api/v1/attempts/${mine.attempt_id}`)).toMatchObject({
      status: 404,
      body: { message: 'attempt not found' },
    })
    expect((await asB(`/api/v1/tenants/${a}/destinations/${f.hooks.all}/attempts/${mine.attempt_id}`)).status).toBe(404)
    expect((await asB(`/api/v1/attempts?destination_id=${f.hooks.all}`)).body.models).toEqual([])
    expect((await asB(`/api/v1/attempts?event_id=${mine.event_id}`)).body.models).toEqual([])
    const retried = await post(f.t, '/api/v1/retry', { event_id: mine.event_id, destination_id: f.hooks.all }, tokenB)
    expect(retried).toMatchObject({ status: 404, body: { message: 'event not found' } })
    expect(
      (await asB(`/api/v1/attempts`)).body.models.every((m: { tenant_id: string }) => m.tenant_id === f.b.workspaceId),
    ).toBe(true)

    // Outpost dialect, workspace API keys: not a credential of this surface at all.
    for (const key of [f.b.apiKey, f.t.apiKey]) {
      expect((await get(f.t, `/api/v1/attempts?tenant_id=${a}`, key)).status).toBe(401)
      expect((await get(f.t, `/api/v1/attempts/${mine.attempt_id}`, key)).status).toBe(401)
      expect(
        (await post(f.t, '/api/v1/retry', { event_id: mine.event_id, destination_id: f.hooks.all }, key)).status,
      ).toBe(401)
    }

    // v1 dialect, B's workspace key: A's tenant path answers as a missing tenant, and A's ids under B's path as missing.
    for (const tenant of [a, missing]) {
      const res = await get(f.t, `/v1/tenants/${tenant}/deliveries`, f.b.apiKey)
      expect(res.status).toBe(404)
      expect(res.body).toMatchObject({ status: 404, title: 'Not Found', detail: `Tenant ${tenant} not found.` })
      expect((await get(f.t, `/v1/tenants/${tenant}/deliveries/${mine.attempt_id}`, f.b.apiKey)).body.detail).toBe(
        `Tenant ${tenant} not found.`,
      )
    }
    const underB = await get(f.t, `/v1/tenants/${f.b.workspaceId}/deliveries/${mine.attempt_id}`, f.b.apiKey)
    expect(underB).toMatchObject({ status: 404, body: { detail: `Delivery ${mine.attempt_id} not found.` } })
    const filtered = await get(
      f.t,
      `/v1/tenants/${f.b.workspaceId}/deliveries?destination_id=${f.hooks.all}&event_id=${mine.event_id}`,
      f.b.apiKey,
    )
    expect(filtered).toMatchObject({ status: 200, body: { data: [], next_cursor: null } })
    // A tenant token is not a key of the v1 dialect.
    expect((await get(f.t, `/v1/tenants/${f.b.workspaceId}/deliveries`, tokenB)).status).toBe(401)
  })
})
