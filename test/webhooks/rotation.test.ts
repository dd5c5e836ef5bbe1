import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import { createWebhook, it, refusedByBoth, verifyBoth } from './helpers.js'

const DAY_MS = 24 * 60 * 60 * 1000

describe('secret rotation', () => {
  it('signs with both secrets for 24 h after a rotation, then with the new one only', async ({ rig }) => {
    // Scenario: rotate_secret → deliveries verify with the old and the new secret; a day later only with the new.
    const clock = new FakeClock(Date.now())
    const t = await rig.latchkey({ clock })
    const receiver = await rig.receiver()
    const webhook = await createWebhook(t, receiver.url, ['device.added'])
    const rotated = await t.call('/webhooks/rotate_secret', { webhook_id: webhook.webhook_id })
    expect(rotated.status).toBe(200)
    const fresh = rotated.body.webhook.secret as string
    expect(fresh).toMatch(/^whsec_/)
    expect(fresh).not.toBe(webhook.secret)
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook.secret).toBe(fresh)

    await t.call('/devices/create', { name: 'during the overlap' })
    await receiver.count(1)
    const during = receiver.received[0]
    if (!during) throw new Error('nothing received')
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2)
    expect(String(during.headers['svix-signature'])).toBe(during.headers['webhook-signature'])
    verifyBoth(fresh, during, clock.now())
    verifyBoth(webhook.secret, during, clock.now())

    clock.advance(DAY_MS)
    await t.call('/devices/create', { name: 'after the overlap' })
    await receiver.count(2)
    const after = receiver.received[1]
    if (!after) throw new Error('nothing received')
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1)
    verifyBoth(fresh, after, clock.now())
    expect(refusedByBoth(webhook.secret, after, clock.now())).toBe(true)
  })
})
