import { describe, expect, vi } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { createDevice } from '../helpers/devices.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { it, type TestLatchkey } from '../helpers/latchkey.js'
import { closed, connectRaw, end, publish } from '../helpers/mqtt.js'

async function history(t: TestLatchkey, attemptId: string): Promise<string[]> {
  const res = await t.call('/action_attempts/history', { action_attempt_id: attemptId })
  return res.body.history.map((h: { kind: string }) => h.kind)
}

async function attempt(t: TestLatchkey, attemptId: string) {
  return (await t.call('/action_attempts/get', { action_attempt_id: attemptId })).body.action_attempt
}

describe('action attempts', () => {
  it('records accepted, then success, with the timeline fields', async ({ latchkey: t, lock }) => {
    // Scenario: a lock that acks "accepted" before "success" → accepted_at, sent_at, completed_at all set.
    const { device } = await lock(t, { behaviour: { sendAccepted: true } })
    const res = await t.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
    const a = res.body.action_attempt
    expect(a).toMatchObject({ status: 'success', device_id: device.deviceId, workspace_id: t.workspaceId })
    for (const field of ['created_at', 'updated_at', 'sent_at', 'accepted_at', 'completed_at'])
      expect(a[field], field).toEqual(expect.any(String))
    await vi.waitFor(async () =>
      expect(await history(t, a.action_attempt_id)).toEqual(['created', 'sent', 'accepted', 'succeeded']),
    )
  })

  it('answers every history entry with its time and detail, oldest first', async ({ latchkey: t, lock }) => {
    // Scenario: a lock that acks accepted, then success twice; another that reports a jam twice. Each entry's time is
    // the attempt field it set, and the acks that changed nothing carry what the lock said.
    const entries = async (id: string) =>
      (await t.call('/action_attempts/history', { action_attempt_id: id })).body.history
    const { device } = await lock(t, { behaviour: { sendAccepted: true, duplicateAck: 1 } })
    const ok = (await t.call('/locks/lock_door', { device_id: device.deviceId, sync: true })).body.action_attempt
    await vi.waitFor(async () => expect(await entries(ok.action_attempt_id)).toHaveLength(5))
    expect(await entries(ok.action_attempt_id)).toStrictEqual([
      { kind: 'created', at: ok.created_at },
      { kind: 'sent', at: ok.sent_at },
      { kind: 'accepted', at: ok.accepted_at },
      { kind: 'succeeded', at: ok.completed_at },
      { kind: 'duplicate_ack', at: expect.any(String), detail: { status: 'success' } },
    ])

    const { device: jammed } = await lock(t, { behaviour: { jam: 1, duplicateAck: 1 } })
    const failed = (await t.call('/locks/lock_door', { device_id: jammed.deviceId, sync: true })).body.action_attempt
    expect(failed).toMatchObject({ status: 'error', error: { type: 'lock_jammed' } })
    await vi.waitFor(async () => expect(await entries(failed.action_attempt_id)).toHaveLength(4))
    expect(await entries(failed.action_attempt_id)).toStrictEqual([
      { kind: 'created', at: failed.created_at },
      { kind: 'sent', at: failed.sent_at },
      { kind: 'failed', at: failed.completed_at, detail: { error: failed.error } },
      {
        kind: 'duplicate_ack',
        at: expect.any(String),
        detail: { status: 'error', error: expect.objectContaining({ type: 'lock_jammed' }) },
      },
    ])
  })

  it('lets the first settling ack win and records a duplicate without changing anything', async ({
    latchkey: t,
    lock,
  }) => {
    // Scenario: the lock sends its success ack twice.
    const { device } = await lock(t, { behaviour: { duplicateAck: 1 } })
    const res = await t.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
    const id = res.body.action_attempt.action_attempt_id
    await vi.waitFor(async () => expect(await history(t, id)).toContain('duplicate_ack'))
    expect(await attempt(t, id)).toEqual(res.body.action_attempt)
  })

  it('settles at the deadline and records a late ack that changes nothing', async ({ latchkey: t, lock }) => {
    // Scenario: a lock that acks success only after expires_at → expired at the deadline, the ack recorded as late.
    const { device } = await lock(t, { behaviour: { lateAck: 1 } })
    const res = await t.call('/locks/unlock_door', { device_id: device.deviceId, sync: true, timeout_ms: 1000 })
    const settled = res.body.action_attempt
    expect(settled).toMatchObject({ status: 'error', error: { type: 'action_attempt_expired' } })
    await vi.waitFor(async () => expect(await history(t, settled.action_attempt_id)).toContain('late_ack'))
    expect(await attempt(t, settled.action_attempt_id)).toEqual(settled)
  })

  it('drops and counts an ack for an unknown command', async ({ latchkey: t }) => {
    // Scenario: a device acks a command id latchkey never issued.
    const device = await createDevice(t)
    const client = await connectRaw(device.url, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
    })
    await publish(
      client,
      deviceTopic(device.deviceId, 'acks'),
      JSON.stringify({ command_id: '6f1c2a10-0000-4000-8000-000000000000', status: 'success' }),
    )
    await vi.waitFor(() =>
      expect(t.lk.metrics.get('mqtt_messages_dropped_total', { reason: 'unknown_command' })).toBe(1),
    )
    await end(client)
  })

  it("refuses a forged ack on another device's topic and leaves that attempt pending", async ({
    latchkey: t,
    lock,
  }) => {
    // Scenario: device A publishes a success ack on B's acks topic for B's pending attempt.
    const { device: b } = await lock(t, { behaviour: { silent: 1 } })
    const a = await createDevice(t, 'forger')
    const pending = (await t.call('/locks/unlock_door', { device_id: b.deviceId, sync: false })).body.action_attempt
    const forger = await connectRaw(a.url, { clientId: a.deviceId, username: a.deviceId, password: a.password })
    const gone = closed(forger)
    forger.publish(
      deviceTopic(b.deviceId, 'acks'),
      JSON.stringify({ command_id: pending.action_attempt_id, status: 'success' }),
      { qos: 1 },
    )
    await gone
    expect(t.lk.metrics.get('mqtt_refusals_total', { reason: 'foreign_topic' })).toBe(1)
    // An ack from A on its own topic naming B's attempt does not settle it either.
    const own = await connectRaw(a.url, { clientId: a.deviceId, username: a.deviceId, password: a.password })
    await publish(
      own,
      deviceTopic(a.deviceId, 'acks'),
      JSON.stringify({ command_id: pending.action_attempt_id, status: 'success' }),
    )
    await vi.waitFor(() =>
      expect(t.lk.metrics.get('mqtt_messages_dropped_total', { reason: 'unknown_command' })).toBe(1),
    )
    expect((await attempt(t, pending.action_attempt_id)).status).toBe('pending')
    await end(own)
  })

  it('answers an Idempotency-Key replay with the same attempt and a reused key with 409', async ({
    latchkey: t,
    lock,
  }) => {
    // Scenario: the same key and body twice → one attempt, one command; the same key with another body → 409.
    const { device, lock: sim } = await lock(t)
    const headers = { 'idempotency-key': 'order-42' }
    const first = await t.call('/locks/lock_door', { device_id: device.deviceId }, undefined, headers)
    const second = await t.call('/locks/lock_door', { device_id: device.deviceId }, undefined, headers)
    expect(second.body.action_attempt.action_attempt_id).toBe(first.body.action_attempt.action_attempt_id)
    expect(sim.counters.commandsReceived).toBe(1)
    const reused = await t.call('/locks/unlock_door', { device_id: device.deviceId }, undefined, headers)
    expect(reused.status).toBe(409)
    expect(reused.body.error.type).toBe('idempotency_key_reused')
    const list = await t.call('/action_attempts/list', { device_id: device.deviceId })
    expect(list.body.action_attempts).toHaveLength(1)
  })

  it('refuses an action the device cannot perform remotely', async ({ latchkey: t }) => {
    // Scenario: a lock created with can_remotely_unlock: false → unlock_door is 400, lock_door works.
    const device = await createDevice(t, 'lock-only', { can_remotely_unlock: false })
    const res = await t.call('/locks/unlock_door', { device_id: device.deviceId })
    expect(res.status).toBe(400)
    expect(res.body.error.type).toBe('action_not_supported')
  })

  it('settles a pending attempt as device_removed when its device is deleted', async ({ latchkey: t, lock }) => {
    // Scenario: a silent lock, a pending attempt, /devices/delete.
    const { device } = await lock(t, { behaviour: { silent: 1 } })
    const pending = (await t.call('/locks/lock_door', { device_id: device.deviceId, sync: false })).body.action_attempt
    expect((await t.call('/devices/delete', { device_id: device.deviceId })).status).toBe(200)
    expect(await attempt(t, pending.action_attempt_id)).toMatchObject({
      status: 'error',
      error: { type: 'device_removed' },
    })
  })

  it('expires a silent attempt when the injected clock passes its deadline', async ({ start, lock }) => {
    // Scenario: fake clock; nothing settles before 8 s of clock time, then action_attempt_expired at exactly the deadline.
    const clock = new FakeClock(Date.now())
    const t = await start({ clock })
    const { device, lock: sim } = await lock(t, { behaviour: { silent: 1 }, now: () => clock.now() })
    const commanded = sim.next('command')
    const pending = (await t.call('/locks/lock_door', { device_id: device.deviceId, sync: false })).body.action_attempt
    await commanded
    clock.advance(7999)
    expect((await attempt(t, pending.action_attempt_id)).status).toBe('pending')
    clock.advance(1)
    await vi.waitFor(async () => expect((await attempt(t, pending.action_attempt_id)).status).toBe('error'))
    const settled = await attempt(t, pending.action_attempt_id)
    expect(settled.error.type).toBe('action_attempt_expired')
    expect(settled.completed_at).toBe(new Date(Date.parse(pending.created_at) + 8000).toISOString())
  })
})
