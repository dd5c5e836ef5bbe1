import { describe, expect } from 'vitest'
import { it } from '../webhooks/helpers.js'

describe('/docs', () => {
  it('serves the interactive API reference of the same OpenAPI document as /openapi.json', async ({ rig }) => {
    // Scenario: a browser opens /docs → HTML of Swagger UI; the document it loads equals /openapi.json.
    const t = await rig.latchkey()
    const page = await fetch(`${t.lk.httpUrl}/docs`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toMatch(/swagger-ui/i)
    const initializer = await (await fetch(`${t.lk.httpUrl}/docs/static/swagger-initializer.js`)).text()
    expect(initializer).toContain('./json')
    const served = await (await fetch(`${t.lk.httpUrl}/docs/json`)).json()
    const spec = (await (await fetch(`${t.lk.httpUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> }
    expect(served).toEqual(spec)
    // Every surface is in it, and the reference's own routes are not.
    const paths = Object.keys(spec.paths)
    expect(paths).toEqual(expect.arrayContaining(['/locks/lock_door', '/api/v1/attempts']))
    expect(paths.some((p) => p.startsWith('/v1/'))).toBe(true)
    expect(paths.some((p) => p.startsWith('/docs'))).toBe(false)
  })
})
