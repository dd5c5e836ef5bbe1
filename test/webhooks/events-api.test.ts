import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import { it } from './helpers.js'

const HOUR_MS = 60 * 60 * 1000

describe('/events/list and /events/get', () => {
  it('lists the last 24 h by default, newest first, and older events with since or between', async ({ rig }) => {
    // Scenario: a device added 25 h ago and one now → the default window shows only the new one.
    const clock = new FakeClock(Date.parse('2026-03-01T12:00:00.000Z'))
    const t = await rig.latchkey({ clock })
    await t.call('/devices/create', { name: 'old' })
    clock.advance(25 * HOUR_MS)
    await t.call('/devices/create', { name: 'new' })

    const recent = await t.call('/events/list', {})
    expect(recent.status).toBe(200)
    expect(recent.body.events.map((e: { created_at: string }) => e.created_at)).toEqual(['2026-03-02T13:00:00.000Z'])
    const all = await t.call('/events/list', { since: '2026-03-01' })
    expect(all.body.events.map((e: { created_at: string }) => e.created_at)).toEqual([
      '2026-03-02T13:00:00.000Z',
      '2026-03-01T12:00:00.000Z',
    ])
    const between = await t.call('/events/list', { between: ['2026-03-01T11:00:00Z', '2026-03-01T13:00:00+00:00'] })
    expect(between.body.events).toHaveLength(1)
    expect(between.body.events[0].created_at).toBe('2026-03-01T12:00:00.000Z')
    const both = await t.call('/events/list', {
      since: '2026-03-01',
      between: ['2026-03-01T11:00:00Z', '2026-03-01T13:00:00Z'],
    })
    expect(both.status).toBe(400)
    expect(both.body.error.type).toBe('invalid_input')
  })

  it('filters by device, event type and action attempt, pages with a cursor, and answers GET too', async ({ rig }) => {
    // Scenario: two locks, one locked through the API → each filter returns exactly its events.
    const t = await rig.latchkey()
    const a = await rig.lock(t)
    const b = await rig.lock(t)
    const locked = await t.call('/locks/lock_door', { device_id: a.deviceId, sync: true })
    const attemptId = locked.body.action_attempt.action_attempt_id

    const byAttempt = await t.call('/events/list', { action_attempt_id: attemptId })
    expect(byAttempt.body.events.map((e: { event_type: string }) => e.event_type).sort()).toEqual([
      'action_attempt.lock_door.succeeded',
      'lock.locked',
    ])
    const settled = byAttempt.body.events.find(
      (e: { event_type: string }) => e.event_type === 'action_attempt.lock_door.succeeded',
    )
    expect(Object.keys(settled).sort()).toEqual(
      [
        'action_attempt_id',
        'action_type',
        'created_at',
        'device_id',
        'event_description',
        'event_id',
        'event_type',
        'occurred_at',
        'status',
        'workspace_id',
      ].sort(),
    )
    const ofB = await t.call('/events/list', { device_id: b.deviceId })
    expect(new Set(ofB.body.events.map((e: { device_id: string }) => e.device_id))).toEqual(new Set([b.deviceId]))
    expect(ofB.body.events.map((e: { event_type: string }) => e.event_type).sort()).toEqual([
      'device.added',
      'device.connected',
    ])
    const both = await t.call('/events/list', { device_ids: [a.deviceId, b.deviceId], event_types: ['device.added'] })
    expect(both.body.events).toHaveLength(2)

    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await t.call('/events/list', { limit: 2, ...(cursor ? { page_cursor: cursor } : {}) })
      seen.push(...page.body.events.map((e: { event_id: string }) => e.event_id))
      cursor = page.body.pagination.next_page_cursor
      if (cursor) expect(page.body.pagination).toMatchObject({ has_next_page: true })
    } while (cursor)
    const everything = await t.call('/events/list', {})
    expect(seen).toEqual(everything.body.events.map((e: { event_id: string }) => e.event_id))
    expect(new Set(seen).size).toBe(seen.length)

    const viaGet = await fetch(`${t.lk.httpUrl}/events/list?event_type=lock.locked`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    })
    const body = (await viaGet.json()) as { events: Array<{ event_id: string }> }
    expect(body.events).toHaveLength(1)
    const one = await t.call('/events/get', { event_id: body.events[0]?.event_id })
    expect(one.body.event).toMatchObject({
      event_type: 'lock.locked',
      method: 'remote',
      action_attempt_id: attemptId,
      device_id: a.deviceId,
    })
    const missing = await t.call('/events/get', { event_id: 'f0000000-0000-4000-8000-000000000000' })
    expect(missing.status).toBe(404)
    expect(missing.body.error.type).toBe('event_not_found')
  })

  it('records exactly one failed event, with the error, for an attempt that fails', async ({ rig }) => {
    // Scenario: unlock a lock that never connected → settled as device_offline → one failed event, no lock event.
    const t = await rig.latchkey()
    const created = await t.call('/devices/create', { name: 'never online' })
    const deviceId = created.body.device.device_id
    const attempt = (await t.call('/locks/unlock_door', { device_id: deviceId })).body.action_attempt
    expect(attempt.status).toBe('error')
    const events = (await t.call('/events/list', { action_attempt_id: attempt.action_attempt_id })).body.events
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      event_type: 'action_attempt.unlock_door.failed',
      action_attempt_id: attempt.action_attempt_id,
      device_id: deviceId,
      action_type: 'UNLOCK_DOOR',
      status: 'error',
      error_code: 'device_offline',
      error: { type: 'device_offline', message: attempt.error.message },
    })
  })
})
