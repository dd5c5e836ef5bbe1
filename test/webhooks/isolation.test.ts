import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { createWebhook, it, verifyBoth, waitForAttempts } from './helpers.js'

async function addDevices(t: TestLatchkey, n: number, key?: string): Promise<void> {
  for (let i = 0; i < n; i++) await t.call('/devices/create', { name: `door ${i}` }, key)
}

describe('isolation', () => {
  it('keeps a hanging endpoint from delaying other webhooks of the same or another workspace', async ({ rig }) => {
    // Scenario: A has a hanging and a healthy webhook, B a healthy one; every healthy delivery arrives while the
    // hanging one holds only its own 2 slots; its timeout (on the fake clock) then frees them.
    const clock = new FakeClock(Date.now())
    const t = await rig.latchkey({
      clock,
      env: { WEBHOOK_CONCURRENCY_PER_WEBHOOK: '2', WEBHOOK_CONCURRENCY: '8', WEBHOOK_TIMEOUT_MS: '15000' },
    })
    const b = await rig.workspace(t)
    const hanging = await rig.receiver(() => 'hang')
    const healthy = await rig.receiver()
    const other = await rig.receiver()
    const stuck = await createWebhook(t, hanging.url, ['device.added'])
    const good = await createWebhook(t, healthy.url, ['device.added'])
    const theirs = await createWebhook(t, other.url, ['device.added'], b.apiKey)

    await addDevices(t, 10)
    await addDevices(t, 5, b.apiKey)
    await healthy.count(10)
    await other.count(5)
    await hanging.count(2)
    expect(hanging.received).toHaveLength(2)
    for (const request of healthy.received) verifyBoth(good.secret, request)
    for (const request of other.received) verifyBoth(theirs.secret, request)

    // The timeout is a Clock timer: at 15 s the two requests fail and the next two take their slots.
    clock.advance(15_000)
    await hanging.count(4)
    const first = hanging.received[0]
    const [attempt] = await waitForAttempts(t, first?.id as string, stuck.webhook_id, 1)
    expect(attempt).toMatchObject({
      status: 'failed',
      response_code: null,
      error_message: 'timed out after 15000 ms',
      will_retry: true,
    })
  })

  it("never sends A's events to B's webhooks, and B cannot read A's events or webhooks", async ({ rig }) => {
    // Scenario: two workspaces with a webhook each; each receives only its own events; foreign ids answer 404.
    const t = await rig.latchkey()
    const b = await rig.workspace(t)
    const mine = await rig.receiver()
    const theirs = await rig.receiver()
    const webhook = await createWebhook(t, mine.url)
    await createWebhook(t, theirs.url, undefined, b.apiKey)
    await addDevices(t, 3)
    await addDevices(t, 1, b.apiKey)
    await mine.count(3)
    await theirs.count(1)
    expect(mine.received.every((r) => r.event.workspace_id === t.workspaceId)).toBe(true)
    expect(theirs.received.every((r) => r.event.workspace_id === b.workspaceId)).toBe(true)

    const eventId = mine.received[0]?.id
    const asB = (path: string, body: unknown) => t.call(path, body, b.apiKey)
    expect((await asB('/events/get', { event_id: eventId })).body.error).toMatchObject({ type: 'event_not_found' })
    expect((await asB('/events/list', {})).body.events.map((e: { workspace_id: string }) => e.workspace_id)).toEqual([
      b.workspaceId,
    ])
    const missing = (await asB('/webhooks/get', { webhook_id: 'f0000000-0000-4000-8000-000000000000' })).body
    for (const [path, body] of [
      ['/webhooks/get', { webhook_id: webhook.webhook_id }],
      ['/webhooks/update', { webhook_id: webhook.webhook_id, url: theirs.url }],
      ['/webhooks/rotate_secret', { webhook_id: webhook.webhook_id }],
      ['/webhooks/delete', { webhook_id: webhook.webhook_id }],
    ] as const) {
      const res = await asB(path, body)
      expect(res.status, path).toBe(404)
      expect(res.body.error.type).toBe('webhook_not_found')
      expect(res.body.error.message).toBe(missing.error.message)
    }
    expect((await asB('/webhooks/list', {})).body.webhooks).toHaveLength(1)
    // A's webhook is untouched by all of that.
    const still = (await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook
    expect(still).toMatchObject({ url: mine.url, secret: webhook.secret, enabled: true })
  })

  it('stops delivering to a deleted webhook but keeps its delivery history', async ({ rig }) => {
    // Scenario: a failing webhook with a retry scheduled is deleted → the retry is cancelled, the attempts remain.
    const clock = new FakeClock(Date.now())
    const t = await rig.latchkey({ clock })
    const receiver = await rig.receiver(() => ({ status: 500 }))
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    await addDevices(t, 1)
    await receiver.count(1)
    const eventId = receiver.received[0]?.id as string
    await waitForAttempts(t, eventId, webhook.webhook_id, 1)
    expect((await t.call('/webhooks/delete', { webhook_id: webhook.webhook_id })).status).toBe(200)
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).status).toBe(404)
    clock.advance(60_000)
    await addDevices(t, 1)
    expect(await t.lk.store.deliveries.get(eventId, webhook.webhook_id)).toMatchObject({
      status: 'cancelled',
      next_attempt_at: null,
    })
    expect(await waitForAttempts(t, eventId, webhook.webhook_id, 1)).toHaveLength(1)
    expect(receiver.received).toHaveLength(1)
  })
})
