import { describe, expect } from 'vitest'
import { createWebhook, it, refusedByBoth, verifyBoth, waitForAttempts } from './helpers.js'

describe('signed webhook delivery', () => {
  it('delivers a lock run to a webhook, signed for standardwebhooks and @seamapi/webhook, the body exactly the stored event', async ({
    rig,
  }) => {
    // Scenario: a webhook for all events; a simulated lock connects and is locked → every event arrives signed.
    const t = await rig.latchkey()
    const receiver = await rig.receiver()
    const webhook = await createWebhook(t, receiver.url)
    expect(webhook).toMatchObject({ url: receiver.url, event_types: ['*'], enabled: true })
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)

    const { deviceId } = await rig.lock(t)
    const locked = await t.call('/locks/lock_door', { device_id: deviceId, sync: true })
    const attemptId = locked.body.action_attempt.action_attempt_id
    // Both events of the ack commit together and go out concurrently: wait for each, not for one of them.
    await receiver.until((r) =>
      ['action_attempt.lock_door.succeeded', 'lock.locked'].every((type) =>
        r.some((x) => x.event?.event_type === type),
      ),
    )

    const types = receiver.received.map((r) => r.event.event_type)
    expect(types).toEqual(
      expect.arrayContaining(['device.added', 'device.connected', 'action_attempt.lock_door.succeeded', 'lock.locked']),
    )
    for (const request of receiver.received) {
      expect(verifyBoth(webhook.secret, request)).toEqual(request.event)
      const { headers } = request
      expect(headers['webhook-id']).toBe(request.event.event_id)
      expect(headers['svix-id']).toBe(headers['webhook-id'])
      expect(headers['svix-timestamp']).toBe(headers['webhook-timestamp'])
      expect(headers['svix-signature']).toBe(headers['webhook-signature'])
      expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60)
      expect(headers['content-type']).toBe('application/json')
      // The body is the event JSON exactly as stored and served by /events/get.
      const stored = await t.call('/events/get', { event_id: request.id })
      expect(request.body).toBe(JSON.stringify(stored.body.event))
    }
    const succeeded = receiver.received.find((r) => r.event.event_type === 'action_attempt.lock_door.succeeded')
    expect(succeeded?.event).toMatchObject({
      action_attempt_id: attemptId,
      device_id: deviceId,
      action_type: 'LOCK_DOOR',
      status: 'success',
    })
    const remote = receiver.received.find((r) => r.event.event_type === 'lock.locked')
    expect(remote?.event).toMatchObject({ method: 'remote', action_attempt_id: attemptId })

    // Negative controls: another secret, or a body changed by one byte, verifies with neither library.
    const request = receiver.received[0]
    if (!request) throw new Error('nothing received')
    expect(refusedByBoth(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, request)).toBe(true)
    expect(
      refusedByBoth(webhook.secret, { ...request, body: request.body.replace('"event_type"', '"event_typf"') }),
    ).toBe(true)

    // Every attempt is recorded with what was sent and what came back.
    const [attempt] = await waitForAttempts(t, request.id, webhook.webhook_id, 1)
    expect(attempt).toMatchObject({
      attempt_number: 1,
      status: 'success',
      response_code: 204,
      manual: false,
      will_retry: false,
      error_message: null,
      signature: request.headers['webhook-signature'],
      event_id: request.id,
      webhook_id: webhook.webhook_id,
      workspace_id: t.workspaceId,
    })
    expect(attempt?.attempt_id).toMatch(/^dlv_[0-9a-f]{32}$/)
    expect(attempt?.evidence_id).toMatch(/^[0-9a-f]{64}$/)
  })

  it('sends each webhook only the event types it subscribed to', async ({ rig }) => {
    // Scenario: one webhook for lock.* and one for device.added; a lock run → each gets its own types only.
    const t = await rig.latchkey()
    const locks = await rig.receiver()
    const added = await rig.receiver()
    await createWebhook(t, locks.url, ['lock.*'])
    await createWebhook(t, added.url, ['device.added'])
    const { deviceId, lock } = await rig.lock(t)
    await t.call('/locks/unlock_door', { device_id: deviceId, sync: true })
    await lock.manualLock()
    await locks.until((r) => r.length >= 2)
    await added.count(1)
    const methods = locks.received.map((r) => [r.event.event_type, r.event.method])
    expect(methods).toEqual([
      ['lock.unlocked', 'remote'],
      ['lock.locked', 'manual'],
    ])
    expect(added.received.map((r) => r.event.event_type)).toEqual(['device.added'])
  })

  it('refuses event types that do not exist', async ({ rig }) => {
    // Scenario: a typo in event_types → 400 invalid_input naming the field, nothing created.
    const t = await rig.latchkey()
    const res = await t.call('/webhooks/create', { url: 'http://127.0.0.1:9/hook', event_types: ['lock.lockd'] })
    expect(res.status).toBe(400)
    expect(res.body.error.type).toBe('invalid_input')
    expect(Object.keys(res.body.error.validation_errors)).toEqual(['event_types.0'])
    expect((await t.call('/webhooks/list', {})).body.webhooks).toEqual([])
  })
})
