import {
  SeamActionAttemptFailedError,
  SeamHttp,
  SeamHttpInvalidInputError,
  SeamHttpUnauthorizedError,
} from '@seamapi/http/connect'
import { describe, expect } from 'vitest'
import { createDevice } from '../helpers/devices.js'
import { it as base, type TestLatchkey } from '../helpers/latchkey.js'

/** `latchkey` plus `seam`: the SDK pointed at it with the workspace key. */
const it = base.extend<{ seam: SeamHttp }>({
  seam: async ({ latchkey }, use) => use(new SeamHttp({ apiKey: latchkey.apiKey, endpoint: latchkey.lk.httpUrl })),
})

/** The SDK's failure error carries the attempt's error type as `code`. */
const codeOf = (error: unknown) => (error as { code?: string }).code

const polls = (t: TestLatchkey) =>
  t.lk.metrics.get('http_requests_total', { route: '/action_attempts/get', status: '200' })

describe('the @seamapi/http SDK against latchkey', () => {
  it('reads devices and locks', async ({ latchkey: t, seam, lock }) => {
    // Scenario: devices.get/list and locks.get/list return the device with its live properties.
    const { device } = await lock(t, { initialState: { locked: true, battery_level: 0.7 } })
    await createDevice(t, 'never connected')
    const got = await seam.devices.get({ device_id: device.deviceId })
    expect(got).toMatchObject({
      device_id: device.deviceId,
      properties: { online: true, locked: true, battery_level: 0.7 },
    })
    const listed = await seam.devices.list()
    expect(listed.map((d: { display_name: string }) => d.display_name)).toEqual(['simulated lock', 'never connected'])
    const asLock = await seam.locks.get({ device_id: device.deviceId })
    expect(asLock.device_id).toBe(device.deviceId)
    expect((await seam.locks.list()).length).toBe(2)
  })

  it('maps errors to the SDK error classes', async ({ latchkey: t, seam }) => {
    // Scenario: a bad key → SeamHttpUnauthorizedError; a missing device_id → SeamHttpInvalidInputError; unknown id → 404 type.
    const stranger = new SeamHttp({ apiKey: 'seam_0notakeynotakeynotakeynotakey', endpoint: t.lk.httpUrl })
    await expect(stranger.devices.list()).rejects.toBeInstanceOf(SeamHttpUnauthorizedError)
    await expect(seam.devices.get({} as { device_id: string })).rejects.toBeInstanceOf(SeamHttpInvalidInputError)
    await expect(seam.devices.get({ device_id: 'f0000000-0000-4000-8000-000000000000' })).rejects.toMatchObject({
      code: 'device_not_found',
      statusCode: 404,
    })
  })

  it('locks a door and returns the settled attempt without polling', async ({ latchkey: t, seam, lock }) => {
    // Scenario: an instantly acking lock → lockDoor (default waitForActionAttempt) resolves success in one call.
    const { device } = await lock(t)
    const before = polls(t)
    const attempt = await seam.locks.lockDoor({ device_id: device.deviceId })
    expect(attempt).toMatchObject({
      status: 'success',
      action_type: 'LOCK_DOOR',
      result: { was_confirmed_by_device: true },
      error: null,
    })
    expect(polls(t)).toBe(before)
    expect((await seam.locks.get({ device_id: device.deviceId })).properties.locked).toBe(true)
  })

  it('unlocks a door', async ({ latchkey: t, seam, lock }) => {
    // Scenario: unlockDoor → success, the lock's state follows.
    const { device, lock: sim } = await lock(t, { initialState: { locked: true } })
    const attempt = await seam.locks.unlockDoor({ device_id: device.deviceId })
    expect(attempt).toMatchObject({ status: 'success', action_type: 'UNLOCK_DOOR' })
    expect(sim.state.locked).toBe(false)
  })

  it('surfaces a jammed lock as SeamActionAttemptFailedError with code lock_jammed', async ({
    latchkey: t,
    seam,
    lock,
  }) => {
    // Scenario: the lock acks error lock_jammed.
    const { device } = await lock(t, { behaviour: { jam: 1 } })
    const failure = await seam.locks.lockDoor({ device_id: device.deviceId }).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(SeamActionAttemptFailedError)
    expect(codeOf(failure)).toBe('lock_jammed')
  })

  it('settles a silent lock as action_attempt_expired at its deadline', async ({ latchkey: t, seam, lock }) => {
    // Scenario: the lock never acks; timeout_ms 1000 → the SDK's first poll sees the expired attempt.
    const { device } = await lock(t, { behaviour: { silent: 1 } })
    const failure = await seam.locks
      .lockDoor({ device_id: device.deviceId, timeout_ms: 1000 } as { device_id: string })
      .catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(SeamActionAttemptFailedError)
    expect(codeOf(failure)).toBe('action_attempt_expired')
  })

  it('fails at once with device_offline for a lock that is not connected', async ({ latchkey: t, seam }) => {
    // Scenario: the device exists but never connected.
    const device = await createDevice(t)
    const failure = await seam.locks.lockDoor({ device_id: device.deviceId }).catch((error: unknown) => error)
    expect(codeOf(failure)).toBe('device_offline')
  })

  it('answers sync: true with the settled attempt in one round trip', async ({ latchkey: t, lock }) => {
    // Scenario: a lock slower than the 500 ms grace wait → sync: true still returns success in one call; sync: false returns pending.
    const { device } = await lock(t, { behaviour: { ackLatencyMs: 700 } })
    const res = await t.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
    expect(res.body.action_attempt.status).toBe('success')
    const quick = await t.call('/locks/unlock_door', { device_id: device.deviceId, sync: false })
    expect(quick.body.action_attempt.status).toBe('pending')
  })

  it('reads attempts back by id, by device and in pages', async ({ latchkey: t, seam, lock }) => {
    // Scenario: three attempts → get each, list by device newest first, page with limit 1.
    const { device } = await lock(t)
    const ids: string[] = []
    for (const action of ['lockDoor', 'unlockDoor', 'lockDoor'] as const)
      ids.push((await seam.locks[action]({ device_id: device.deviceId })).action_attempt_id)
    const one = await seam.actionAttempts.get({ action_attempt_id: ids[1] as string })
    expect(one).toMatchObject({ action_attempt_id: ids[1], status: 'success', action_type: 'UNLOCK_DOOR' })
    const listed = await seam.actionAttempts.list({ action_attempt_ids: ids })
    expect(listed.map((a: { action_attempt_id: string }) => a.action_attempt_id).sort()).toEqual([...ids].sort())
    const byDevice = await t.call('/action_attempts/list', { device_id: device.deviceId, limit: 1 })
    expect(byDevice.body.action_attempts[0].action_attempt_id).toBe(ids[2])
    const next = await t.call('/action_attempts/list', {
      device_id: device.deviceId,
      limit: 2,
      page_cursor: byDevice.body.pagination.next_page_cursor,
    })
    expect(next.body.action_attempts.map((a: { action_attempt_id: string }) => a.action_attempt_id)).toEqual([
      ids[1],
      ids[0],
    ])
    expect(next.body.pagination.has_next_page).toBe(false)
  })
})
