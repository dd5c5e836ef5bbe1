import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import type { Clock } from '../domain/clock.js'

/**
 * Tenant JWTs of the Outpost dialect (docs/deliveries.md): HS256, `sub` = tenant (workspace) id, `iss` latchkey, 24 h.
 * The secret is JWT_SECRET or one made at first start and kept in the database (resolveJwtSecret).
 */
export const TOKEN_ISSUER = 'latchkey'
export const TOKEN_TTL_SECONDS = 24 * 60 * 60

export interface TenantTokens {
  issue(tenantId: string): Promise<string>
  /** The tenant a token was issued for; undefined for a bad signature, another issuer or algorithm, or an expired token. */
  verify(token: string): Promise<string | undefined>
}

export function createTenantTokens(deps: { secret: string; clock: Clock }): TenantTokens {
  const key = new TextEncoder().encode(deps.secret)
  const nowSeconds = () => Math.floor(deps.clock.now() / 1000)

  return {
    issue(tenantId) {
      const now = nowSeconds()
      return new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(tenantId)
        .setIssuer(TOKEN_ISSUER)
        .setIssuedAt(now)
        .setExpirationTime(now + TOKEN_TTL_SECONDS)
        .sign(key)
    },

    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          issuer: TOKEN_ISSUER,
          algorithms: ['HS256'],
          currentDate: new Date(deps.clock.now()),
          requiredClaims: ['sub', 'exp'],
        })
        return typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined
      } catch {
        return undefined
      }
    },
  }
}

/**
 * Whether a bearer token is a JWT (three dot-separated parts with a JOSE header): such a token is verified as a JWT
 * and never looked up as an API key (docs/deliveries.md). API keys contain no dots.
 */
export function looksLikeJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false
  try {
    decodeProtectedHeader(token)
    return true
  } catch {
    return false
  }
}
