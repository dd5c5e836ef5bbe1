import type { Outpost } from '@hookdeck/outpost-sdk'
import type { Attempt } from '@hookdeck/outpost-sdk/models/components'
import { describe, expect } from 'vitest'
import type { DeliveryAttempt } from '../../src/domain/delivery.js'
import { it } from '../webhooks/helpers.js'
import { newestFirst, outpost, twoTenants, type Fixture } from './helpers.js'

/** Every page of a listing, following `next` from the first page. */
async function forwards(sdk: Outpost, request: Parameters<Outpost['attempts']['list']>[0]): Promise<Attempt[]> {
  const seen: Attempt[] = []
  let next: string | undefined
  for (let pages = 0; pages < 100; pages++) {
    const page = await sdk.attempts.list({ ...request, ...(next ? { next } : {}) })
    seen.push(...(page.models ?? []))
    if (!page.pagination?.next) return seen
    next = page.pagination.next
  }
  throw new Error('no end in sight')
}

function expectSameAttempt(model: Attempt | undefined, attempt: DeliveryAttempt): void {
  expect(model).toMatchObject({
    id: attempt.attempt_id,
    tenantId: attempt.workspace_id,
    eventId: attempt.event_id,
    destinationId: attempt.webhook_id,
    status: attempt.status,
    code: String(attempt.response_code),
    attemptNumber: attempt.attempt_number,
    manual: attempt.manual,
    time: new Date(attempt.attempted_at),
  })
}

function idsOf(models: Attempt[] | undefined): string[] {
  return (models ?? []).map((m) => m.id as string)
}

function expected(f: Fixture, keep: (a: DeliveryAttempt) => boolean): string[] {
  return newestFirst(f.attempts.filter(keep)).map((a) => a.attempt_id)
}

describe('Outpost dialect through @hookdeck/outpost-sdk', () => {
  it('lists attempts with every filter the SDK sends, newest first, shaped as the SDK validates them', async ({
    rig,
  }) => {
    // Scenario: two tenants, three webhooks, 7 recorded attempts; each filter's result equals the same filter in JS.
    const f = await twoTenants(rig)
    const sdk = outpost(f.t)
    const a = f.t.workspaceId
    const all = await sdk.attempts.list({})
    expect(idsOf(all.models)).toEqual(expected(f, () => true))
    expect(all.pagination).toEqual({ orderBy: 'time', dir: 'desc', limit: 100, next: null, prev: null })
    const byId = new Map(f.attempts.map((x) => [x.attempt_id, x]))
    for (const model of all.models ?? []) expectSameAttempt(model, byId.get(model.id as string) as DeliveryAttempt)

    const cases: Array<[Parameters<Outpost['attempts']['list']>[0], (x: DeliveryAttempt) => boolean]> = [
      [{ tenantId: a }, (x) => x.workspace_id === a],
      [{ tenantId: [a, f.b.workspaceId] }, () => true],
      [{ eventId: f.events.e1 }, (x) => x.event_id === f.events.e1],
      [{ eventId: [f.events.e2, f.events.eb] }, (x) => x.event_id === f.events.e2 || x.event_id === f.events.eb],
      [{ destinationId: f.hooks.flaky }, (x) => x.webhook_id === f.hooks.flaky],
      [{ destinationId: [f.hooks.all, f.hooks.other], status: 'success' }, (x) => x.webhook_id !== f.hooks.flaky],
      [{ topic: 'device.deleted' }, (x) => x.event_type === 'device.deleted'],
      [{ tenantId: a, topic: ['device.added'] }, (x) => x.workspace_id === a && x.event_type === 'device.added'],
      [{ status: 'failed' }, (x) => x.status === 'failed'],
      [{ tenantId: a, status: 'success' }, (x) => x.workspace_id === a && x.status === 'success'],
      [{ time: { gte: new Date('2026-03-02T00:00:00Z') } }, (x) => x.attempted_at >= '2026-03-02T00:00:00.000Z'],
      [{ time: { lt: new Date('2026-03-02T00:00:00Z') } }, (x) => x.attempted_at < '2026-03-02T00:00:00.000Z'],
      [
        { time: { gt: new Date('2026-03-01T23:59:50Z'), lte: new Date('2026-03-02T00:00:00Z') } },
        (x) => x.attempted_at > '2026-03-01T23:59:50.000Z',
      ],
      [
        { eventId: f.events.e1, destinationId: f.hooks.flaky, status: 'failed', tenantId: a },
        (x) => x.event_id === f.events.e1 && x.webhook_id === f.hooks.flaky,
      ],
      [{ destinationType: 'webhook', tenantId: f.b.workspaceId }, (x) => x.workspace_id === f.b.workspaceId],
    ]
    for (const [request, keep] of cases) {
      const want = expected(f, keep)
      expect(want.length, JSON.stringify(request)).toBeGreaterThan(0)
      expect(idsOf((await sdk.attempts.list(request)).models), JSON.stringify(request)).toEqual(want)
    }
    expect(idsOf((await sdk.attempts.list({ dir: 'asc' })).models)).toEqual(expected(f, () => true).reverse())
    expect((await sdk.attempts.list({ tenantId: 'f0000000-0000-4000-8000-000000000000' })).models).toEqual([])
  })

  it('includes the event, its data and the response on request', async ({ rig }) => {
    // Scenario: include=event, event.data, response_data on the list and on get; without include neither appears.
    const f = await twoTenants(rig)
    const sdk = outpost(f.t)
    const failed = f.attempts.find((x) => x.webhook_id === f.hooks.flaky) as DeliveryAttempt
    const plain = await sdk.attempts.get(failed.attempt_id)
    expectSameAttempt(plain, failed)
    expect(plain.event).toBeUndefined()
    expect(plain.responseData).toBeUndefined()

    const full = await sdk.attempts.get(failed.attempt_id, undefined, ['event.data', 'response_data'])
    expect(full.responseData).toMatchObject({ status: 503, body: 'busy' })
    expect(full.event).toMatchObject({
      id: failed.event_id,
      tenantId: f.t.workspaceId,
      destinationId: f.hooks.flaky,
      topic: 'device.added',
      eligibleForRetry: true,
      data: { event_id: failed.event_id, event_type: 'device.added', workspace_id: f.t.workspaceId },
    })

    const listed = await sdk.attempts.list({ eventId: f.events.e3, include: 'event' })
    const [model] = listed.models ?? []
    expect(model?.event).toMatchObject({ id: f.events.e3, topic: 'device.deleted', eligibleForRetry: true })
    expect(model?.event && 'data' in model.event).toBe(false)
  })

  it('pages forwards and backwards one attempt at a time with no duplicates and no gaps', async ({ rig }) => {
    // Scenario: limit 1 over 7 attempts (several with the same time): next to the end, then prev back to the start.
    const f = await twoTenants(rig)
    const sdk = outpost(f.t)
    const want = expected(f, () => true)
    for (const dir of ['desc', 'asc'] as const) {
      const order = dir === 'desc' ? want : [...want].reverse()
      expect(idsOf(await forwards(sdk, { limit: 1, dir }))).toEqual(order)

      const lastPage = await sdk.attempts.list({
        limit: 1,
        dir,
        next: (await pageCursorBefore(sdk, dir, order.length - 1)) ?? '',
      })
      expect(idsOf(lastPage.models)).toEqual([order[order.length - 1]])
      expect(lastPage.pagination?.next).toBeNull()
      const back: string[] = idsOf(lastPage.models)
      let prev = lastPage.pagination?.prev
      while (prev) {
        const page = await sdk.attempts.list({ limit: 1, dir, prev })
        back.unshift(...idsOf(page.models))
        expect(page.pagination?.next).toBeTruthy()
        prev = page.pagination?.prev
      }
      expect(back).toEqual(order)
    }
    // Pages of 3: 3 + 3 + 1, the cursors of one direction composing with the other.
    const first = await sdk.attempts.list({ limit: 3 })
    const second = await sdk.attempts.list({ limit: 3, next: first.pagination?.next ?? '' })
    const third = await sdk.attempts.list({ limit: 3, next: second.pagination?.next ?? '' })
    expect([first, second, third].map((p) => idsOf(p.models).length)).toEqual([3, 3, 1])
    const again = await sdk.attempts.list({ limit: 3, prev: third.pagination?.prev ?? '' })
    expect(idsOf(again.models)).toEqual(idsOf(second.models))
    expect(idsOf([first, second, third].flatMap((p) => p.models ?? []))).toEqual(want)
  })

  it('lists and gets attempts pinned to a tenant and destination', async ({ rig }) => {
    // Scenario: the destination-scoped routes see that destination only; a destination of another tenant is 404.
    const f = await twoTenants(rig)
    const sdk = outpost(f.t)
    const a = f.t.workspaceId
    const pinned = await sdk.destinations.listAttempts({
      tenantId: a,
      destinationId: f.hooks.flaky,
      status: 'failed',
      limit: 2,
    })
    expect(idsOf(pinned.models)).toEqual(expected(f, (x) => x.webhook_id === f.hooks.flaky).slice(0, 2))
    expect(pinned.pagination?.next).toBeTruthy()
    const one = f.attempts.find((x) => x.webhook_id === f.hooks.all) as DeliveryAttempt
    expectSameAttempt(await sdk.destinations.getAttempt(a, f.hooks.all, one.attempt_id), one)
    await expect(sdk.destinations.getAttempt(a, f.hooks.flaky, one.attempt_id)).rejects.toMatchObject({
      statusCode: 404,
    })
    await expect(sdk.destinations.listAttempts({ tenantId: a, destinationId: f.hooks.other })).rejects.toMatchObject({
      statusCode: 404,
    })
    await expect(sdk.attempts.get('dlv_00000000000000000000000000000000')).rejects.toMatchObject({
      statusCode: 404,
      message: 'attempt not found',
    })
  })
})

/** The `next` cursor that leads to the page holding only item `index` (limit 1). */
async function pageCursorBefore(sdk: Outpost, dir: 'asc' | 'desc', index: number): Promise<string | undefined> {
  let next: string | undefined
  for (let i = 0; i < index; i++)
    next = (await sdk.attempts.list({ limit: 1, dir, ...(next ? { next } : {}) })).pagination?.next ?? undefined
  return next
}
