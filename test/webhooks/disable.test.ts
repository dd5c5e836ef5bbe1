import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { createWebhook, it, verifyBoth, waitForAttempts } from './helpers.js'

async function addDevices(t: TestLatchkey, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await t.call('/devices/create', { name: `door ${i}` })
}

/** device.added event ids, oldest first. */
async function addedEvents(t: TestLatchkey): Promise<string[]> {
  const res = await t.call('/events/list', { event_type: 'device.added' })
  return res.body.events.map((e: { event_id: string }) => e.event_id).reverse()
}

describe('disable and hold', () => {
  it('disables a webhook at once on 410 Gone and holds its deliveries until it is enabled again', async ({ rig }) => {
    // Scenario: 410 on the first delivery → disabled (gone), the next event is held, enabling releases both in order.
    // One request at a time to the webhook: with more, the two released deliveries race and may arrive either way
    // round (docs/webhooks.md#disable-and-hold).
    const t = await rig.latchkey({
      clock: new FakeClock(Date.now()),
      env: { WEBHOOK_CONCURRENCY_PER_WEBHOOK: '1' },
    })
    let gone = true
    const receiver = await rig.receiver(() => (gone ? { status: 410 } : { status: 200, body: 'ok' }))
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    await addDevices(t, 1)
    await receiver.count(1)
    const [first] = await addedEvents(t)
    const [attempt] = await waitForAttempts(t, first as string, webhook.webhook_id, 1)
    expect(attempt).toMatchObject({ status: 'failed', response_code: 410, will_retry: false })
    const got = await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })
    expect(got.body.webhook).toMatchObject({ enabled: false, disabled_reason: 'gone' })
    expect(await t.lk.store.deliveries.get(first as string, webhook.webhook_id)).toMatchObject({
      status: 'pending',
      held: true,
    })

    await addDevices(t, 1)
    const events = await addedEvents(t)
    expect(await t.lk.store.deliveries.get(events[1] as string, webhook.webhook_id)).toMatchObject({
      status: 'pending',
      held: true,
    })
    expect(receiver.received).toHaveLength(1)

    gone = false
    expect((await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, enabled: true })).status).toBe(200)
    await receiver.count(3)
    expect(receiver.received.map((r) => r.id)).toEqual([events[0], events[0], events[1]])
    for (const request of receiver.received) verifyBoth(webhook.secret, request)
    const after = await waitForAttempts(t, events[0] as string, webhook.webhook_id, 2)
    expect(after.map((a) => [a.attempt_number, a.status])).toEqual([
      [1, 'failed'],
      [2, 'success'],
    ])
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook).toMatchObject({
      enabled: true,
      disabled_reason: null,
    })
  })

  it('disables after N consecutive failures, holds later events, and releases them all in event order', async ({
    rig,
  }) => {
    // Scenario: WEBHOOK_DISABLE_AFTER=3, a receiver failing 3 times → disabled; 2 more events held; enable → 5 in order.
    const t = await rig.latchkey({
      clock: new FakeClock(Date.now()),
      env: { WEBHOOK_DISABLE_AFTER: '3', WEBHOOK_CONCURRENCY_PER_WEBHOOK: '1' },
    })
    let healthy = false
    const receiver = await rig.receiver(() => (healthy ? { status: 204 } : { status: 500 }))
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    await addDevices(t, 3)
    await receiver.count(3)
    await waitForAttempts(t, (await addedEvents(t))[2] as string, webhook.webhook_id, 1)
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook).toMatchObject({
      enabled: false,
      disabled_reason: 'consecutive_failures',
    })

    await addDevices(t, 2)
    const events = await addedEvents(t)
    expect(events).toHaveLength(5)
    for (const id of events) expect((await t.lk.store.deliveries.get(id, webhook.webhook_id))?.held).toBe(true)
    expect(receiver.received).toHaveLength(3)

    healthy = true
    const before = receiver.received.length
    await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, enabled: true })
    await receiver.count(before + 5)
    expect(receiver.received.slice(before).map((r) => r.id)).toEqual(events)
    // The receiver answered; the last records commit right after.
    for (const id of events)
      await expect.poll(async () => (await t.lk.store.deliveries.get(id, webhook.webhook_id))?.status).toBe('delivered')
  })

  it('holds deliveries while its owner has it disabled and releases them when enabled', async ({ rig }) => {
    // Scenario: update {enabled: false}; two events → nothing sent; update {enabled: true} → both, in order.
    const t = await rig.latchkey()
    const receiver = await rig.receiver()
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, enabled: false })
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook).toMatchObject({
      enabled: false,
      disabled_reason: 'manual',
    })
    await addDevices(t, 2)
    const events = await addedEvents(t)
    for (const id of events) expect((await t.lk.store.deliveries.get(id, webhook.webhook_id))?.held).toBe(true)
    expect(receiver.received).toHaveLength(0)
    await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, enabled: true })
    await receiver.count(2)
    expect(receiver.received.map((r) => r.id).sort()).toEqual([...events].sort())
  })
})
