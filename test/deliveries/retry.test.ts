import { describe, expect } from 'vitest'
import { it, verifyBoth, waitForAttempts } from '../webhooks/helpers.js'
import { outpost, post, twoTenants } from './helpers.js'

describe('POST /api/v1/retry', () => {
  it('accepts a retry with 202 and makes a manual attempt, numbered after the last, that reaches the receiver', async ({
    rig,
  }) => {
    // Scenario: e2 failed once with 503 (a retry is scheduled); the receiver recovers; retry → attempt 2, manual, 200.
    const f = await twoTenants(rig)
    f.flaky.respond = () => ({ status: 200, body: 'ok' })
    const sdk = outpost(f.t)
    const before = f.flaky.received.length
    expect(await sdk.retry({ eventId: f.events.e2, destinationId: f.hooks.flaky })).toEqual({ success: true })
    await f.flaky.count(before + 1)
    const request = f.flaky.received[before]
    expect(request?.id).toBe(f.events.e2)
    const { secret } = (await f.t.call('/webhooks/get', { webhook_id: f.hooks.flaky })).body.webhook
    verifyBoth(secret, request as NonNullable<typeof request>, f.clock.now())

    const attempts = await waitForAttempts(f.t, f.events.e2, f.hooks.flaky, 2)
    expect(attempts.map((a) => [a.attempt_number, a.status, a.manual, a.response_code])).toEqual([
      [1, 'failed', false, 503],
      [2, 'success', true, 200],
    ])
    expect(await f.t.lk.store.deliveries.get(f.events.e2, f.hooks.flaky)).toMatchObject({
      status: 'delivered',
      next_attempt_at: null,
    })
    const listed = await sdk.attempts.list({ eventId: f.events.e2, destinationId: f.hooks.flaky })
    expect(listed.models?.[0]).toMatchObject({ attemptNumber: 2, manual: true, status: 'success', code: '200' })

    // A delivery that had given up (2 failed attempts) is retried too: attempt 3.
    await sdk.retry({ eventId: f.events.e1, destinationId: f.hooks.flaky })
    const e1 = await waitForAttempts(f.t, f.events.e1, f.hooks.flaky, 3)
    expect(e1[2]).toMatchObject({ attempt_number: 3, manual: true, status: 'success' })
  })

  it('answers 404 for what was never attempted or is gone, 400 while disabled or unsubscribed, 422 for a bad body', async ({
    rig,
  }) => {
    // Scenario: each refusal of POST /api/v1/retry (docs/deliveries.md) in turn, through the SDK where it can send it.
    const f = await twoTenants(rig)
    const sdk = outpost(f.t)
    const retry = (eventId: string, destinationId: string) => sdk.retry({ eventId, destinationId })
    await expect(retry('f0000000-0000-4000-8000-000000000000', f.hooks.all)).rejects.toMatchObject({
      statusCode: 404,
      message: 'event not found',
    })
    // device.deleted never went to the device.added-only webhook.
    await expect(retry(f.events.e3, f.hooks.flaky)).rejects.toMatchObject({ statusCode: 404 })
    await expect(retry(f.events.e1, f.hooks.other)).rejects.toMatchObject({ statusCode: 404 })

    await f.t.call('/webhooks/update', { webhook_id: f.hooks.flaky, enabled: false })
    await expect(retry(f.events.e1, f.hooks.flaky)).rejects.toMatchObject({
      statusCode: 400,
      body: JSON.stringify({ message: 'destination is disabled' }),
    })
    await f.t.call('/webhooks/update', { webhook_id: f.hooks.flaky, enabled: true, event_types: ['lock.*'] })
    await expect(retry(f.events.e1, f.hooks.flaky)).rejects.toMatchObject({
      statusCode: 400,
      body: JSON.stringify({ message: 'destination is not subscribed to topic device.added' }),
    })
    await f.t.call('/webhooks/delete', { webhook_id: f.hooks.flaky })
    await expect(retry(f.events.e1, f.hooks.flaky)).rejects.toMatchObject({
      statusCode: 404,
      message: 'destination not found',
    })

    const bad = await post(f.t, '/api/v1/retry', { event_id: f.events.e1 })
    expect(bad.status).toBe(422)
    expect(bad.body).toEqual({ message: 'validation error', data: { 'body.destination_id': expect.any(String) } })
    // None of the refused retries made an attempt.
    expect((await f.t.lk.store.deliveries.attempts(f.events.e1, f.hooks.flaky)).map((a) => a.manual)).toEqual([
      false,
      false,
    ])
  })
})
