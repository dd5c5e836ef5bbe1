import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import { describe, expect } from 'vitest'
import { it, waitForAttempts } from '../webhooks/helpers.js'
import { ADMIN_KEY, get, outpost, twoTenants } from './helpers.js'
import { ERRORS } from '../../src/domain/errors.js'

const JWT_SECRET = 'jwt-secret-for-tests-0123456789abcdef'

describe('tenant JWTs', () => {
  it('issues an HS256 token for a tenant that sees only that tenant, for 24 hours', async ({ rig }) => {
    // Scenario: the admin asks for A's token; with it the SDK lists A's attempts only; a day later it is refused.
    const f = await twoTenants(rig, { JWT_SECRET })
    const a = f.t.workspaceId
    const issued = await outpost(f.t).tenants.getToken(a)
    expect(issued.tenantId).toBe(a)
    const token = issued.token as string
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'HS256' })
    const { payload } = await jwtVerify(token, new TextEncoder().encode(JWT_SECRET), {
      currentDate: new Date(f.clock.now()),
    })
    expect(payload).toMatchObject({ sub: a, iss: 'latchkey', iat: f.clock.now() / 1000 })
    expect((payload.exp as number) - (payload.iat as number)).toBe(24 * 60 * 60)

    const tenant = outpost(f.t, token)
    const mine = f.attempts.filter((x) => x.workspace_id === a).map((x) => x.attempt_id)
    const listed = await tenant.attempts.list({})
    expect(listed.models?.map((m) => m.id).sort()).toEqual([...mine].sort())
    expect((await tenant.attempts.list({ tenantId: a })).models).toHaveLength(mine.length)
    await expect(tenant.tenants.getToken(a)).rejects.toMatchObject({ statusCode: 401 })

    // One second before expiry (the scheduled retry of A's 503 webhook has gone out meanwhile: A's too).
    f.clock.advance(24 * 60 * 60 * 1000 - 1000)
    await waitForAttempts(f.t, f.events.e2, f.hooks.flaky, 2)
    const later = (await tenant.attempts.list({})).models ?? []
    expect(later.length).toBeGreaterThan(mine.length)
    expect(later.every((m) => m.tenantId === a)).toBe(true)
    f.clock.advance(1000)
    await expect(tenant.attempts.list({})).rejects.toMatchObject({ statusCode: 401 })
  })

  it('refuses forged, foreign and malformed tokens and workspace API keys with 401', async ({ rig }) => {
    // Scenario: a token re-signed with another secret, one with its subject changed, a wrong issuer, and a seam_ key.
    const f = await twoTenants(rig, { JWT_SECRET })
    const token = (await outpost(f.t).tenants.getToken(f.t.workspaceId)).token as string
    const now = Math.floor(f.clock.now() / 1000)
    const sign = (secret: string, claims: { sub: string; iss: string }) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(claims.sub)
        .setIssuer(claims.iss)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(new TextEncoder().encode(secret))
    const [header, , signature] = token.split('.')
    const swapped = Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: f.b.workspaceId })).toString('base64url')
    const refused = [
      await sign('another-secret-0123456789abcdef01234', { sub: f.t.workspaceId, iss: 'latchkey' }),
      await sign(JWT_SECRET, { sub: f.t.workspaceId, iss: 'someone-else' }),
      `${header}.${swapped}.${signature}`,
      `${token}x`,
      f.t.apiKey,
      f.b.apiKey,
      'not-a-key',
    ]
    for (const key of refused) {
      const res = await get(f.t, '/api/v1/attempts', key)
      expect(res.status, key).toBe(401)
      expect(res.body).toEqual({ message: ERRORS.unauthorized.message })
    }
    expect((await get(f.t, '/api/v1/attempts', null)).status).toBe(401)
    // A correctly signed token of our own making is accepted: the secret is the one configured.
    expect(
      (await get(f.t, '/api/v1/attempts', await sign(JWT_SECRET, { sub: f.b.workspaceId, iss: 'latchkey' }))).status,
    ).toBe(200)
    expect((await get(f.t, `/api/v1/tenants/f0000000-0000-4000-8000-000000000000/token`, ADMIN_KEY)).status).toBe(404)
  })

  it('keeps the generated signing secret across restarts when JWT_SECRET is unset', async ({ rig }) => {
    // Scenario: a token issued before a restart still works after it: the secret was persisted at first start.
    const first = await rig.latchkey({ keep: true })
    const token = (await outpost(first).tenants.getToken(first.workspaceId)).token as string
    expect((await get(first, '/api/v1/attempts', token)).status).toBe(200)
    await first.lk.close()
    const second = await rig.latchkey({ dataDir: first.dataDir })
    expect((await get(second, '/api/v1/attempts', token)).status).toBe(200)
    expect((await get(second, '/api/v1/attempts', `${token.slice(0, -2)}AA`)).status).toBe(401)
  })
})
