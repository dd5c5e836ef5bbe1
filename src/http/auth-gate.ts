import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { LatchkeyError } from '../domain/errors.js'
import { bearerToken } from './bearer.js'

/** Requests per minute; 0 turns a limit off (docs/security.md, "HTTP API"). */
export interface RateLimits {
  /** Authenticated requests per API key (or tenant token) per minute. */
  perKeyPerMinute: number
  /** Failed authentications (401) per client address per minute; past it the address gets 429 until the window ends. */
  authFailuresPerMinute: number
}

export const DEFAULT_RATE_LIMITS: RateLimits = { perKeyPerMinute: 600_000, authFailuresPerMinute: 60 }

/**
 * Authenticates a request, rate-limited. `authenticate` resolves the bearer token to the caller or undefined. An
 * address over its budget of failures is answered 429 before its token is even looked at, so guessing keys costs a
 * window per batch; a caller over its per-key budget is answered 429.
 */
export type AuthGate = <T>(
  request: FastifyRequest,
  authenticate: (token: string) => Promise<T | undefined>,
) => Promise<T>

type Limiter = (
  request: FastifyRequest,
  options?: { increment?: boolean },
) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number }>

const WINDOW_MS = 60_000

function rateLimited(ttlInSeconds: number | undefined): LatchkeyError {
  return new LatchkeyError('rate_limited', undefined, { retry_after_s: Math.max(1, ttlInSeconds ?? 1) })
}

/** Keys are never kept in the limiter's memory: only a digest of the token. */
function tokenKey(request: FastifyRequest): string {
  const token = bearerToken(request.headers.authorization) ?? ''
  return `key:${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`
}

/** Each limiter counts in its own in-memory LRU of at most 5,000 keys (the plugin's default): memory stays bounded. */
export async function createAuthGate(
  app: FastifyInstance,
  limits: RateLimits,
  /** Told of every refusal, for `latchkey_http_rate_limited_total{scope}`. */
  onLimited: (scope: 'api_key' | 'client_address') => void = () => {},
): Promise<AuthGate> {
  await app.register(rateLimit, { global: false, timeWindow: WINDOW_MS })
  const perKey: Limiter | undefined =
    limits.perKeyPerMinute > 0
      ? app.createRateLimit({ max: limits.perKeyPerMinute, timeWindow: WINDOW_MS, keyGenerator: tokenKey })
      : undefined
  const failures: Limiter | undefined =
    limits.authFailuresPerMinute > 0
      ? // Keyed by the client address; IPv6 addresses by their /64, as one host usually holds a whole /64.
        app.createRateLimit({ max: limits.authFailuresPerMinute, timeWindow: WINDOW_MS })
      : undefined

  return async (request, authenticate) => {
    if (failures) {
      const seen = await failures(request, { increment: false })
      if (seen.isExceeded) {
        onLimited('client_address')
        throw rateLimited(seen.ttlInSeconds)
      }
    }
    const token = bearerToken(request.headers.authorization)
    const caller = token ? await authenticate(token) : undefined
    if (caller === undefined) {
      if (failures) {
        const counted = await failures(request)
        if (counted.isExceeded) {
          onLimited('client_address')
          throw rateLimited(counted.ttlInSeconds)
        }
      }
      throw new LatchkeyError('unauthorized')
    }
    if (perKey) {
      const counted = await perKey(request)
      if (counted.isExceeded) {
        onLimited('api_key')
        throw rateLimited(counted.ttlInSeconds)
      }
    }
    return caller
  }
}
