import { describe, expect } from 'vitest'
import { it } from '../webhooks/helpers.js'

/** Cheap checks of statements in docs/api.md, so the reference cannot drift from what the server does. */
describe('documented behaviour', () => {
  it('takes `between` in a GET query, as a comma-separated pair or as a repeated key', async ({ rig }) => {
    // Scenario: a device is added now; a GET with a window around now finds its event, one in the past does not.
    const t = await rig.latchkey()
    await t.call('/devices/create', { name: 'front door' })
    const now = Date.now()
    const around = [new Date(now - 60_000).toISOString(), new Date(now + 60_000).toISOString()]
    const before = ['2020-01-01T00:00:00Z', '2020-01-02T00:00:00Z']
    const get = async (query: string) => {
      const res = await fetch(`${t.lk.httpUrl}/events/list?${query}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      })
      expect(res.status, query).toBe(200)
      return ((await res.json()) as { events: Array<{ event_type: string }> }).events.map((e) => e.event_type)
    }
    expect(await get(`between=${around.join(',')}`)).toContain('device.added')
    expect(await get(`between=${around[0]}&between=${around[1]}`)).toContain('device.added')
    expect(await get(`between=${before.join(',')}`)).toEqual([])
  })

  it('carries the filters and the limit in next_page_url, and accepts any well-formed cursor', async ({ rig }) => {
    // Scenario: three devices; a list of two of them with limit 1 → next_page_url repeats the filter and the limit,
    // and following it gives the next filtered page. A forged cursor of the right shape is a position.
    const t = await rig.latchkey()
    const ids: string[] = []
    for (const name of ['door a', 'gate', 'door b'])
      ids.push((await t.call('/devices/create', { name })).body.device.device_id)
    const doors = [ids[0] as string, ids[2] as string]
    const first = await t.call('/devices/list', { device_ids: doors, limit: 1 })
    const url = new URL(first.body.pagination.next_page_url)
    expect(url.searchParams.getAll('device_ids')).toEqual(doors)
    expect(url.searchParams.get('limit')).toBe('1')
    const next = await fetch(url, { headers: { authorization: `Bearer ${t.apiKey}` } })
    const page = (await next.json()) as { devices: Array<{ display_name: string }> }
    expect(page.devices.map((d) => d.display_name)).toEqual(['door b'])

    const forged = Buffer.from(JSON.stringify({ s: 1 })).toString('base64url')
    expect((await t.call('/devices/list', { page_cursor: forged })).status).toBe(200)
    const garbage = await t.call('/devices/list', { page_cursor: 'not-a-cursor' })
    expect(garbage.status).toBe(400)
    expect(garbage.body.error.type).toBe('invalid_input')
  })
})
