import { createHash } from 'node:crypto'
import { describe, expect, vi } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { createWebhook, it, verifyBoth, waitForAttempts, type Receiver } from './helpers.js'

/** A clock on a whole second, so that an HTTP-date Retry-After is exact. */
const wholeSecondClock = () => new FakeClock(Math.floor(Date.now() / 1000) * 1000)

async function gauges(t: TestLatchkey): Promise<{ queued: number; inFlight: number }> {
  const text = await (await fetch(`${t.lk.httpUrl}/metrics`)).text()
  const read = (name: string) => Number(new RegExp(`^latchkey_${name} (\\d+)$`, 'm').exec(text)?.[1])
  return { queued: read('webhook_deliveries_queued'), inFlight: read('webhook_deliveries_in_flight') }
}

async function addDevice(t: TestLatchkey): Promise<string> {
  await t.call('/devices/create', { name: 'front door' })
  const listed = await t.call('/events/list', { event_type: 'device.added', limit: 1 })
  return listed.body.events[0].event_id
}

function delayOf(attempts: Array<{ attempted_at: string }>, next: string | null): number {
  const last = attempts[attempts.length - 1]
  return Date.parse(next ?? '') - Date.parse(last?.attempted_at ?? '')
}

function ids(receiver: Receiver): string[] {
  return receiver.received.map((r) => r.id)
}

describe('retries', () => {
  it('retries a 500 on the jittered schedule with the same webhook-id and a fresh timestamp, then gives up', async ({
    rig,
  }) => {
    // Scenario: the receiver answers 500 three times; schedule 5 s, 10 s → attempts at 0, ~5 s, ~15 s, then failed.
    const clock = wholeSecondClock()
    const t = await rig.latchkey({ clock, env: { WEBHOOK_RETRY_SCHEDULE: '5,10' } })
    const receiver = await rig.receiver(() => ({ status: 500, body: 'boom' }))
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    const eventId = await addDevice(t)

    const [first] = await waitForAttempts(t, eventId, webhook.webhook_id, 1)
    expect(first).toMatchObject({
      attempt_number: 1,
      status: 'failed',
      response_code: 500,
      response_body: 'boom',
      will_retry: true,
    })
    let delivery = await t.lk.store.deliveries.get(eventId, webhook.webhook_id)
    const firstDelay = delayOf([first as { attempted_at: string }], delivery?.next_attempt_at ?? null)
    expect(firstDelay).toBeGreaterThanOrEqual(4000)
    expect(firstDelay).toBeLessThanOrEqual(6000)

    // One millisecond early: the retry timer has not fired, the delivery waits in the queue (once the attempt that
    // recorded it has ended: on PostgreSQL it gives its lease back after the record is visible).
    clock.advance(firstDelay - 1)
    await vi.waitFor(async () => expect(await gauges(t)).toEqual({ queued: 1, inFlight: 0 }))
    expect(receiver.received).toHaveLength(1)
    clock.advance(1)
    await receiver.count(2)
    const [one, two] = receiver.received
    expect(two?.id).toBe(one?.id)
    // Timestamp of this attempt, not of the first one.
    expect(Number(two?.headers['webhook-timestamp'])).toBe(Math.floor(clock.now() / 1000))
    expect(Number(two?.headers['webhook-timestamp'])).toBeGreaterThan(Number(one?.headers['webhook-timestamp']))
    expect(two?.headers['webhook-signature']).not.toBe(one?.headers['webhook-signature'])
    for (const request of receiver.received) verifyBoth(webhook.secret, request, clock.now())

    const afterTwo = await waitForAttempts(t, eventId, webhook.webhook_id, 2)
    delivery = await t.lk.store.deliveries.get(eventId, webhook.webhook_id)
    const secondDelay = delayOf(afterTwo, delivery?.next_attempt_at ?? null)
    expect(secondDelay).toBeGreaterThanOrEqual(8000)
    expect(secondDelay).toBeLessThanOrEqual(12000)
    clock.advance(secondDelay)
    await receiver.count(3)
    const attempts = await waitForAttempts(t, eventId, webhook.webhook_id, 3)
    expect(attempts.map((a) => [a.attempt_number, a.status, a.will_retry])).toEqual([
      [1, 'failed', true],
      [2, 'failed', true],
      [3, 'failed', false],
    ])
    delivery = await t.lk.store.deliveries.get(eventId, webhook.webhook_id)
    expect(delivery).toMatchObject({ status: 'failed', next_attempt_at: null, attempt_count: 3 })
    expect(attempts.map((a) => a.signature)).toEqual(receiver.received.map((r) => r.headers['webhook-signature']))

    // The evidence chain of docs/deliveries.md recomputes from the rows alone.
    let previous = ''
    for (const attempt of attempts) {
      const text = `${previous}\n${attempt.attempt_id}\n${attempt.signature}\n${attempt.response_code ?? ''}\n${attempt.attempted_at}`
      expect(attempt.evidence_id).toBe(createHash('sha256').update(text).digest('hex'))
      previous = attempt.evidence_id
    }
  })

  it('honours Retry-After on 429 and 503 within [scheduled, 2 × scheduled] and ignores it otherwise', async ({
    rig,
  }) => {
    // Scenario: one event to four receivers that ask for different pauses; the recorded next attempt shows the clamp.
    const clock = wholeSecondClock()
    const t = await rig.latchkey({ clock, env: { WEBHOOK_RETRY_SCHEDULE: '5' } })
    const inSevenSeconds = new Date(clock.now() + 7000).toUTCString()
    const cases = [
      { reply: { status: 503, headers: { 'retry-after': '3600' } }, expect: [8000, 12000] }, // clamped to 2 × scheduled
      { reply: { status: 429, headers: { 'retry-after': '7' } }, expect: [7000, 7000] }, // within bounds: exact
      { reply: { status: 503, headers: { 'retry-after': inSevenSeconds } }, expect: [7000, 7000] }, // HTTP date
      { reply: { status: 503, headers: { 'retry-after': '1' } }, expect: [4000, 6000] }, // raised to scheduled
      { reply: { status: 500, headers: { 'retry-after': '7' } }, expect: [4000, 6000] }, // only 429/503 may ask
    ]
    const hooks = []
    for (const c of cases) {
      const receiver = await rig.receiver(() => c.reply)
      hooks.push({ ...c, receiver, webhook: await createWebhook(t, receiver.url, ['device.added']) })
    }
    const eventId = await addDevice(t)
    for (const hook of hooks) {
      const attempts = await waitForAttempts(t, eventId, hook.webhook.webhook_id, 1)
      const delivery = await t.lk.store.deliveries.get(eventId, hook.webhook.webhook_id)
      const delay = delayOf(attempts, delivery?.next_attempt_at ?? null)
      expect(delay, JSON.stringify(hook.reply)).toBeGreaterThanOrEqual(hook.expect[0] as number)
      expect(delay, JSON.stringify(hook.reply)).toBeLessThanOrEqual(hook.expect[1] as number)
      expect(attempts[0]?.response_headers?.['retry-after']).toBe(hook.reply.headers['retry-after'])
    }
    // The exact 7 s cases go out again at 7 s, not before.
    clock.advance(6999)
    expect(hooks.map((h) => h.receiver.received.length)).toEqual([1, 1, 1, 1, 1])
    clock.advance(1)
    await hooks[1]?.receiver.count(2)
    await hooks[2]?.receiver.count(2)
    expect(ids(hooks[1]?.receiver as Receiver)).toEqual([eventId, eventId])
  })
})
