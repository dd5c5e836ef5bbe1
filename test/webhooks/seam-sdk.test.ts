import { describe, expect } from 'vitest'
import { it, verifyBoth } from './helpers.js'

interface SdkWebhook {
  webhook_id: string
  url: string
  event_types: string[]
  secret: string
}

describe('webhooks through the @seamapi/http SDK', () => {
  it('creates, lists, gets, updates and deletes a webhook that receives and verifies a lock/unlock run', async ({
    rig,
  }) => {
    // Scenario: seam.webhooks.create for the action attempt and lock events; lockDoor + unlockDoor on a simulated
    // lock → four events, each verified by both libraries; then update, list and delete through the SDK.
    const t = await rig.latchkey()
    const seam = rig.seam(t)
    const receiver = await rig.receiver()
    const eventTypes = [
      'action_attempt.lock_door.succeeded',
      'action_attempt.unlock_door.succeeded',
      'lock.locked',
      'lock.unlocked',
    ]
    const webhook = (await seam.webhooks.create({ url: receiver.url, event_types: eventTypes })) as SdkWebhook
    expect(webhook).toMatchObject({ url: receiver.url, event_types: eventTypes })
    expect(webhook.secret).toMatch(/^whsec_/)
    expect((await seam.webhooks.get({ webhook_id: webhook.webhook_id })) as SdkWebhook).toMatchObject({
      webhook_id: webhook.webhook_id,
      secret: webhook.secret,
    })

    const { deviceId } = await rig.lock(t, { initialState: { locked: false } })
    const locked = await seam.locks.lockDoor({ device_id: deviceId })
    const unlocked = await seam.locks.unlockDoor({ device_id: deviceId })
    expect(locked.status).toBe('success')
    expect(unlocked.status).toBe('success')
    await receiver.count(4)
    const byType = new Map(receiver.received.map((r) => [r.event.event_type as string, r]))
    expect([...byType.keys()].sort()).toEqual([...eventTypes].sort())
    for (const request of receiver.received) expect(verifyBoth(webhook.secret, request)).toEqual(request.event)
    expect(byType.get('lock.locked')?.event).toMatchObject({
      method: 'remote',
      action_attempt_id: locked.action_attempt_id,
      device_id: deviceId,
    })
    expect(byType.get('action_attempt.unlock_door.succeeded')?.event).toMatchObject({
      action_attempt_id: unlocked.action_attempt_id,
      status: 'success',
    })

    await seam.webhooks.update({ webhook_id: webhook.webhook_id, event_types: ['lock.locked'] })
    const listed = (await seam.webhooks.list()) as SdkWebhook[]
    expect(listed.map((w) => [w.webhook_id, w.event_types])).toEqual([[webhook.webhook_id, ['lock.locked']]])
    await seam.locks.lockDoor({ device_id: deviceId })
    await receiver.count(5)
    expect(receiver.received[4]?.event.event_type).toBe('lock.locked')

    await seam.webhooks.delete({ webhook_id: webhook.webhook_id })
    expect((await seam.webhooks.list()) as SdkWebhook[]).toEqual([])
    await expect(seam.webhooks.get({ webhook_id: webhook.webhook_id })).rejects.toMatchObject({
      code: 'webhook_not_found',
      statusCode: 404,
    })
  })
})
