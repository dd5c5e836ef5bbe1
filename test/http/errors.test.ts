import { describe, expect } from 'vitest'
import { ERRORS, LatchkeyError } from '../../src/domain/errors.js'
import { toLatchkeyError, validationPath } from '../../src/http/errors.js'
import { ADMIN_KEY, bearer, raw, withLatchkey } from './helpers.js'

const it = withLatchkey()

describe('the error table', () => {
  it('gives every code a client or server status and a default message', () => {
    // Scenario: each code maps to a 4xx/5xx and a message; a throw without a message uses it.
    for (const [code, { status, message }] of Object.entries(ERRORS)) {
      expect(status, code).toBeGreaterThanOrEqual(400)
      expect(status, code).toBeLessThan(600)
      expect(message.length, code).toBeGreaterThan(0)
    }
    expect(new LatchkeyError('unauthorized').message).toBe(ERRORS.unauthorized.message)
    expect(new LatchkeyError('rate_limited').status).toBe(429)
    expect(toLatchkeyError(new Error('boom')).code).toBe('internal_server_error')
    expect(toLatchkeyError(Object.assign(new Error('too big'), { statusCode: 413 })).code).toBe('payload_too_large')
  })

  it('writes a validation path one way for zod paths and instance paths', () => {
    // Scenario: ['a', 0, 'b'] and '/a/0/b' are both a.0.b; the root is ''.
    expect(validationPath(['a', 0, 'b'])).toBe('a.0.b')
    expect(validationPath('/a/0/b')).toBe('a.0.b')
    expect(validationPath('')).toBe('')
    expect(validationPath([])).toBe('')
  })

  it('words unauthorized one way on every surface', async ({ t }) => {
    // Scenario: no key, a wrong key, a workspace key on an admin route → 401 with the same message everywhere.
    const wrong = bearer('seam_wrongwrongwrongwrongwrongwrong')
    const connect = [
      await raw(t, { path: '/devices/list' }),
      await raw(t, { path: '/devices/list', headers: wrong }),
      await raw(t, { path: '/workspaces/list', headers: bearer(t.apiKey) }),
    ]
    for (const res of connect) {
      expect(res.status).toBe(401)
      expect(res.body).toMatchObject({ error: { type: 'unauthorized', message: ERRORS.unauthorized.message } })
    }
    const outpost = [
      await raw(t, { path: '/api/v1/attempts', headers: wrong }),
      await raw(t, { path: '/api/v1/attempts', headers: bearer(t.apiKey) }),
    ]
    for (const res of outpost) expect(res.body).toEqual({ message: ERRORS.unauthorized.message })
    const v1 = await raw(t, { path: `/v1/tenants/${t.workspaceId}/deliveries`, headers: wrong })
    expect(v1.body).toMatchObject({ status: 401, detail: ERRORS.unauthorized.message })
    expect((await raw(t, { path: '/api/v1/attempts', headers: bearer(ADMIN_KEY) })).status).toBe(200)
  })
})
