import { createHash } from 'node:crypto'
import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { createWebhook, it, waitForAttempts, type Responder } from '../webhooks/helpers.js'
import { ADMIN_KEY, get } from './helpers.js'

interface Delivery {
  id: string
  event_id: string
  destination_id: string
  status: string
  response_code: number | null
  attempt_number: number
  attempted_at: string | null
  error_message: string | null
  evidence_id: string | null
}

async function deliveries(t: TestLatchkey, query = '', key = t.apiKey): Promise<Delivery[]> {
  const res = await get(t, `/v1/tenants/${t.workspaceId}/deliveries${query ? `?${query}` : ''}`, key)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return res.body.data
}

/** Every row, one page of `limit` at a time through next_cursor. */
async function everyPage(t: TestLatchkey, limit: number): Promise<Delivery[]> {
  const rows: Delivery[] = []
  let cursor: string | null = null
  do {
    const res = await get(
      t,
      `/v1/tenants/${t.workspaceId}/deliveries?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      t.apiKey,
    )
    rows.push(...res.body.data)
    cursor = res.body.next_cursor
  } while (cursor)
  return rows
}

const summary = (rows: Delivery[]) => rows.map((r) => [r.destination_id, r.attempt_number, r.status, r.response_code])

/** Answers 500 to the first request of each event, 200 after. */
function secondTimeLucky(): Responder {
  const seen = new Set<string>()
  return (request) => {
    if (seen.has(request.id)) return { status: 200 }
    seen.add(request.id)
    return { status: 500 }
  }
}

describe('v1 dialect: /v1/tenants/{tid}/deliveries', () => {
  it('shows delivered, retrying, failed and pending rows as a lock run is delivered and retried', async ({ rig }) => {
    // Scenario: a simulated lock is locked by hand (→ 500 then 200 on one webhook, 503 for ever on another), then
    // unlocked (→ 500, retry scheduled); the fake clock drives the 5 s and 10 s retries.
    const clock = new FakeClock(Date.parse('2026-04-01T12:00:00.000Z'))
    const t = await rig.latchkey({ clock, env: { WEBHOOK_RETRY_SCHEDULE: '5,10' } })
    const flaky = await rig.receiver(secondTimeLucky())
    const dead = await rig.receiver(() => ({ status: 503 }))
    const lucky = (await createWebhook(t, flaky.url, ['lock.*'])).webhook_id as string
    const doomed = (await createWebhook(t, dead.url, ['lock.locked'])).webhook_id as string
    const { lock } = await rig.lock(t)

    await lock.manualLock()
    await flaky.count(1)
    await dead.count(1)
    const locked = flaky.received[0]?.id as string
    await waitForAttempts(t, locked, lucky, 1)
    await waitForAttempts(t, locked, doomed, 1)
    const early = await deliveries(t)
    expect(summary(early).sort()).toEqual(
      [
        [lucky, 1, 'retrying', 500],
        [lucky, 2, 'pending', null],
        [doomed, 1, 'retrying', 503],
        [doomed, 2, 'pending', null],
      ].sort(),
    )
    const pending = early.find((r) => r.status === 'pending') as Delivery
    expect(pending).toMatchObject({
      attempted_at: null,
      error_message: null,
      evidence_id: null,
      response_code: null,
      event_id: locked,
    })
    expect(early.slice(0, 2).map((r) => r.status)).toEqual(['pending', 'pending'])
    expect((await get(t, `/v1/tenants/${t.workspaceId}/deliveries/${pending.id}`, t.apiKey)).body).toEqual(pending)

    clock.advance(6_000)
    await waitForAttempts(t, locked, lucky, 2)
    await waitForAttempts(t, locked, doomed, 2)
    clock.advance(13_000)
    await waitForAttempts(t, locked, doomed, 3)
    expect((await get(t, `/v1/tenants/${t.workspaceId}/deliveries/${pending.id}`, t.apiKey)).status).toBe(404)

    await lock.manualUnlock()
    await flaky.count(3)
    const unlocked = flaky.received[2]?.id as string
    await waitForAttempts(t, unlocked, lucky, 1)

    // Newest first, a scheduled row by the time it is due; rows of equal time in the order they were recorded.
    const rows = await deliveries(t)
    expect(summary(rows.slice(0, 3))).toEqual([
      [lucky, 2, 'pending', null],
      [lucky, 1, 'retrying', 500],
      [doomed, 3, 'failed', 503],
    ])
    expect(summary(rows.slice(3)).sort()).toEqual(
      [
        [lucky, 2, 'delivered', 200],
        [doomed, 2, 'retrying', 503],
        [lucky, 1, 'retrying', 500],
        [doomed, 1, 'retrying', 503],
      ].sort(),
    )
    const times = rows.slice(1).map((r) => r.attempted_at as string)
    expect(times).toEqual([...times].sort().reverse())
    for (const status of ['delivered', 'retrying', 'failed', 'pending']) {
      const only = await deliveries(t, `status=${status}`)
      expect(only.length, status).toBeGreaterThan(0)
      expect(only).toEqual(rows.filter((r) => r.status === status))
    }
    expect(await deliveries(t, `destination_id=${doomed}`)).toEqual(rows.filter((r) => r.destination_id === doomed))
    expect(await deliveries(t, `event_id=${unlocked}`)).toEqual(rows.filter((r) => r.event_id === unlocked))
    expect(await deliveries(t, `event_id=${locked}&status=retrying&destination_id=${doomed}`)).toHaveLength(2)
    expect(await everyPage(t, 1)).toEqual(rows)
    expect(await everyPage(t, 3)).toEqual(rows)
    expect(await deliveries(t, '', ADMIN_KEY)).toEqual(rows)

    // The evidence chain of the 503 delivery recomputes from the rows and the signatures the receiver saw.
    const chain = rows.filter((r) => r.destination_id === doomed).reverse()
    const signatures = dead.received.map((r) => r.headers['webhook-signature'])
    let previous = ''
    chain.forEach((row, i) => {
      const text = `${previous}\n${row.id}\n${signatures[i]}\n${row.response_code ?? ''}\n${row.attempted_at}`
      expect(row.evidence_id).toBe(createHash('sha256').update(text).digest('hex'))
      previous = row.evidence_id as string
    })
  })

  it('answers every error as application/problem+json with the request id as instance', async ({ rig }) => {
    // Scenario: a bad status, an unknown id, a bad limit, no key and an unknown route, each a problem document.
    const t = await rig.latchkey()
    const base = `/v1/tenants/${t.workspaceId}/deliveries`
    const cases: Array<[string, string | null, number, string]> = [
      [`${base}?status=bogus`, t.apiKey, 400, "status: 'bogus' is not a valid status value"],
      [`${base}/dlv_nope`, t.apiKey, 404, 'Delivery dlv_nope not found.'],
      [`${base}/dlv_pending_1_1`, t.apiKey, 404, 'Delivery dlv_pending_1_1 not found.'],
      [`${base}?cursor=garbage`, t.apiKey, 400, 'invalid cursor'],
      [`${base}?limit=0`, t.apiKey, 400, expect.stringMatching(/^limit: /) as unknown as string],
      [base, null, 401, expect.any(String) as unknown as string],
      [`/v1/tenants/${t.workspaceId}/nothing`, t.apiKey, 404, expect.any(String) as unknown as string],
    ]
    for (const [path, key, status, detail] of cases) {
      const res = await get(t, path, key)
      expect(res.status, path).toBe(status)
      expect(res.headers.get('content-type'), path).toMatch(/^application\/problem\+json/)
      expect(res.body, path).toEqual({
        type: 'about:blank',
        title: expect.any(String),
        status,
        detail,
        instance: res.headers.get('seam-request-id'),
      })
    }
    expect((await get(t, `${base}?limit=500`, t.apiKey)).status).toBe(200)
  })
})
