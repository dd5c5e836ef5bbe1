import { describe, expect } from 'vitest'
import { it } from '../webhooks/helpers.js'
import { get, newestFirst, twoTenants } from './helpers.js'
import { ERRORS } from '../../src/domain/errors.js'

describe('Outpost dialect on the wire', () => {
  it('accepts comma-separated lists, dates, the older spellings, and caps the limit', async ({ rig }) => {
    // Scenario: requests as older clients and curl users send them answer like their current equivalents.
    const f = await twoTenants(rig)
    const list = async (query: string) => {
      const res = await get(f.t, `/api/v1/attempts?${query}`)
      expect(res.status, `${query}: ${JSON.stringify(res.body)}`).toBe(200)
      return res.body
    }
    const ids = (body: { models: Array<{ id: string }> }) => body.models.map((m) => m.id)
    const all = newestFirst(f.attempts).map((a) => a.attempt_id)
    expect(ids(await list(`tenant_id=${f.t.workspaceId},${f.b.workspaceId}`))).toEqual(all)
    expect(ids(await list(`event_id=${f.events.e1}&event_id=${f.events.e3}`))).toEqual(
      ids(await list(`event_id=${f.events.e1},${f.events.e3}`)),
    )
    const sinceMidnight = ids(await list('time[gte]=2026-03-02'))
    expect(sinceMidnight.length).toBeGreaterThan(0)
    expect(sinceMidnight.length).toBeLessThan(all.length)
    expect(ids(await list('time_gte=2026-03-02T01:00:00%2B01:00'))).toEqual(sinceMidnight)
    expect(ids(await list('time[lte]=2026-03-01T23:59:59Z'))).toEqual(
      ids(await list('time_lte=2026-03-01T23:59:59.000Z')),
    )
    expect(ids(await list('direction=asc'))).toEqual([...all].reverse())
    const first = await list('limit=2&dir=asc')
    expect(first.pagination).toMatchObject({ order_by: 'time', dir: 'asc', limit: 2, prev: null })
    const second = await list(`limit=2&dir=asc&next_cursor=${first.pagination.next}`)
    expect(ids(await list(`limit=2&dir=asc&prev_cursor=${second.pagination.prev}`))).toEqual(ids(first))
    expect((await list('limit=5000')).pagination.limit).toBe(1000)
    expect((await list('include=event,response_data')).models[0]).toHaveProperty('response_data')
    expect((await list('destination_type=rabbitmq')).models).toEqual([])
  })

  it('answers {message, data?}: 400 for a bad request, 422 for a bad field, 401 and 404', async ({ rig }) => {
    // Scenario: each kind of refusal, with the status and body Outpost clients expect.
    const f = await twoTenants(rig)
    const next = (await get(f.t, '/api/v1/attempts?limit=1')).body.pagination.next
    const cases: Array<[string, number, unknown]> = [
      [`/api/v1/attempts?next=${next}&prev=${next}`, 400, { message: 'next and prev cannot be used together' }],
      ['/api/v1/attempts?next=bm90LWEtY3Vyc29y', 400, { message: 'invalid cursor' }],
      [
        '/api/v1/attempts?dir=sideways',
        422,
        { message: 'validation error', data: { 'query.dir': expect.any(String) } },
      ],
      [
        '/api/v1/attempts?status=delivered',
        422,
        { message: 'validation error', data: { 'query.status': expect.any(String) } },
      ],
      [
        '/api/v1/attempts?time[gte]=yesterday',
        422,
        { message: 'validation error', data: { 'query.time[gte]': 'invalid format, expected RFC3339 or YYYY-MM-DD' } },
      ],
      ['/api/v1/attempts?limit=0', 422, { message: 'validation error', data: { 'query.limit': expect.any(String) } }],
      [
        '/api/v1/attempts?order_by=code',
        422,
        { message: 'validation error', data: { 'query.order_by': expect.any(String) } },
      ],
      ['/api/v1/nowhere', 404, { message: 'route GET /api/v1/nowhere not found' }],
    ]
    for (const [path, status, body] of cases) {
      const res = await get(f.t, path)
      expect(res.status, path).toBe(status)
      expect(res.body, path).toEqual(body)
    }
    expect(await get(f.t, '/api/v1/attempts?dir=sideways', null)).toMatchObject({
      status: 401,
      body: { message: ERRORS.unauthorized.message },
    })
  })
})
