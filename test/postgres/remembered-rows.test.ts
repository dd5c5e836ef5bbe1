import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, vi } from 'vitest'
import { applyAck, createAttempt, expire, markSent } from '../../src/domain/attempt.js'
import { applyState } from '../../src/domain/device.js'
import { iso } from '../../src/domain/clock.js'
import type { PostgresStore } from '../../src/store/postgres/index.js'
import { it, seedDevices, sentStatements, type Sql } from '../helpers/pg-instances.js'

/**
 * A store remembers the pending attempts and the devices it wrote last and decides their next change on that row,
 * written only if the row is still at the version it left (docs/scale-out.md#attempts).
 */

const DEVICE = 'dev1'

/** A pending lock_door attempt created through `store`, with a deadline a minute away. */
async function created(store: PostgresStore): Promise<string> {
  const id = randomUUID()
  const now = Date.now()
  const { attempt, history, events } = createAttempt(
    {
      action_attempt_id: id,
      action_type: 'LOCK_DOOR',
      device_id: DEVICE,
      workspace_id: 'ws',
      now: iso(now),
      deadline_at: iso(now + 60_000),
    },
    true,
  )
  await store.attempts.create(attempt, history, events)
  return id
}

/** What the database holds of the attempt: its row, its history kinds in order, its events' types in order. */
async function stored(sql: Sql, id: string) {
  const [row] = await sql('SELECT status, version, sent_at FROM action_attempts WHERE action_attempt_id = $1', [id])
  const history = await sql('SELECT kind FROM attempt_history WHERE action_attempt_id = $1 ORDER BY seq', [id])
  const events = await sql('SELECT event_type FROM events WHERE action_attempt_id = $1 ORDER BY seq', [id])
  return { row, history: history.map((h) => h.kind), events: events.map((e) => e.event_type) }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('transitions of the attempts a PostgreSQL store wrote last', () => {
  it('sends and settles an attempt it created without reading its row back', async ({ stores: [a], sql }) => {
    // Scenario: A creates an attempt, marks it sent, and settles it on the lock's ack → every step as on any store
    // (history, both events in order, the device locked, version 2), and A never loaded the row: no `SELECT … FOR UPDATE` of the attempt.
    await seedDevices(sql, [DEVICE])
    const id = await created(a)
    const sent = sentStatements()
    const ack = { command_id: id, status: 'success' as const }
    expect((await a.attempts.transition(id, (x) => markSent(x, iso(Date.now())), { deviceId: DEVICE }))?.changed).toBe(
      true,
    )
    const settled = await a.attempts.transition(id, (x) => applyAck(x, ack, iso(Date.now())), { deviceId: DEVICE })
    expect(settled).toMatchObject({ changed: true, settled: true, attempt: { status: 'success' } })
    expect(sent.texts().filter((text) => /FROM action_attempts[\s\S]*FOR UPDATE/.test(text))).toEqual([])

    expect(await stored(sql, id)).toEqual({
      row: { status: 'success', version: 2, sent_at: expect.any(String) },
      history: ['created', 'sent', 'succeeded'],
      events: ['action_attempt.lock_door.succeeded', 'lock.locked'],
    })
    const [device] = await sql('SELECT locked FROM devices WHERE device_id = $1', [DEVICE])
    expect(device?.locked).toBe(true)
  })

  it('decides again on the row as it is when another instance settled the attempt meanwhile', async ({
    stores: [a, b],
    sql,
  }) => {
    // Scenario: A creates an attempt; B expires it (B never wrote it, so it reads it); the lock's success ack then
    // reaches A, which remembers the attempt as pending → A's write finds the row moved on, A decides on the row
    // as stored: a late ack, nothing changed; the attempt stays expired, with one event.
    await seedDevices(sql, [DEVICE])
    const id = await created(a)
    const late = iso(Date.now() + 120_000)
    expect((await b.attempts.transition(id, (x) => expire(x, late)))?.settled).toBe(true)

    const ack = { command_id: id, status: 'success' as const }
    const decided = await a.attempts.transition(id, (x) => applyAck(x, ack, iso(Date.now())), { deviceId: DEVICE })
    expect(decided).toMatchObject({ changed: false, settled: false, attempt: { status: 'error' } })
    expect(decided?.history.map((entry) => entry.kind)).toEqual(['late_ack'])
    expect(await stored(sql, id)).toEqual({
      row: { status: 'error', version: 1, sent_at: null },
      history: ['created', 'failed', 'late_ack'],
      events: ['action_attempt.lock_door.failed'],
    })
  })

  it('sees a change made without raising the version, by its updated_at', async ({ stores: [a], sql }) => {
    // Scenario: an instance older than the version column marks A's attempt sent (it changes updated_at and
    // sent_at, not the version) → A's next transition, decided on the remembered unsent row, does not apply:
    // A decides again on the row and keeps the other instance's sent_at.
    await seedDevices(sql, [DEVICE])
    const id = await created(a)
    const other = iso(Date.now() + 5)
    await sql('UPDATE action_attempts SET sent_at = $1, updated_at = $1 WHERE action_attempt_id = $2', [other, id])

    const ack = { command_id: id, status: 'accepted' as const }
    const decided = await a.attempts.transition(id, (x) => applyAck(x, ack, iso(Date.now() + 10)), {
      deviceId: DEVICE,
    })
    expect(decided).toMatchObject({ changed: true, attempt: { status: 'pending', sent_at: other } })
    expect(decided?.history.map((entry) => entry.kind)).toEqual(['accepted'])
    expect((await stored(sql, id)).row).toEqual({ status: 'pending', version: 1, sent_at: other })
  })
  it('sees a change made in the same millisecond, by its version', async ({ stores: [a], sql }) => {
    // Scenario: another instance settles A's attempt within the millisecond of A's last write (its updated_at
    // unchanged, its version raised) → the lock's success ack, decided on A's remembered pending row, does not
    // apply: A decides again, records a duplicate ack, and the attempt stays as the other instance left it.
    await seedDevices(sql, [DEVICE])
    const id = await created(a)
    await sql(
      `UPDATE action_attempts SET status = 'error', completed_at = updated_at, version = version + 1
       WHERE action_attempt_id = $1`,
      [id],
    )
    const ack = { command_id: id, status: 'success' as const }
    const decided = await a.attempts.transition(id, (x) => applyAck(x, ack, iso(Date.now())), { deviceId: DEVICE })
    expect(decided).toMatchObject({ changed: false, attempt: { status: 'error' } })
    expect(decided?.history.map((entry) => entry.kind)).toEqual(['duplicate_ack'])
    expect(await stored(sql, id)).toEqual({
      row: { status: 'error', version: 1, sent_at: null },
      history: ['created', 'duplicate_ack'],
      events: [],
    })
  })
  it("applies an ack's `locked` after a state change of its device queued before it, in one transaction", async ({
    stores: [a],
    sql,
  }) => {
    // Scenario: A has written the attempt last, not the device; in one loop turn the lock reports `locked: false`,
    // then acks the lock_door as a success → both commit in one batch, in the order they were queued: the
    // transition's `locked: true` is the device's last word, although the state change waits for its device's row
    // and the transition, decided on the remembered attempt, waits for nothing.
    await seedDevices(sql, [DEVICE, 'dev2'])
    // An event of the workspace first, so that the transition's events find its webhooks known, not read.
    await a.devices.change('dev2', (x) => applyState(x, { locked: true, battery_level: 0.1 }, iso(Date.now())))
    const id = await created(a)
    const ack = { command_id: id, status: 'success' as const }
    const [device, settled] = await Promise.all([
      a.devices.change(DEVICE, (x) => applyState(x, { locked: false }, iso(Date.now()))),
      a.attempts.transition(id, (x) => applyAck(x, ack, iso(Date.now())), { deviceId: DEVICE }),
    ])
    expect(device?.props.locked).toBe(false)
    expect(settled?.locked).toBe(true)
    const [row] = await sql('SELECT locked FROM devices WHERE device_id = $1', [DEVICE])
    expect(row?.locked).toBe(true)
  })
})

describe('changes of the devices a PostgreSQL store changed last', () => {
  it('changes a device it changed last without reading its row back', async ({ stores: [a], sql }) => {
    // Scenario: A records a lock's state twice, then its battery running low → each change as on any store (the
    // low-battery event once), and after the first A never loaded the device's row.
    await seedDevices(sql, [DEVICE])
    const at = Date.now()
    await a.devices.change(DEVICE, (x) => applyState(x, { locked: true, battery_level: 0.9 }, iso(at)))
    const sent = sentStatements()
    await a.devices.change(DEVICE, (x) => applyState(x, { locked: false, battery_level: 0.9 }, iso(at + 1)))
    const low = await a.devices.change(DEVICE, (x) => applyState(x, { locked: false, battery_level: 0.1 }, iso(at + 2)))
    expect(low?.props).toMatchObject({ locked: false, battery_level: 0.1 })
    expect(sent.texts().filter((text) => /SELECT seq, device_id/.test(text))).toEqual([])
    const [row] = await sql('SELECT locked, battery_level, version FROM devices WHERE device_id = $1', [DEVICE])
    expect(row).toEqual({ locked: false, battery_level: 0.1, version: 3 })
    const events = await sql('SELECT event_type FROM events WHERE device_id = $1', [DEVICE])
    expect(events.map((e) => e.event_type)).toEqual(['device.low_battery'])
  })

  it("decides again on the device's row as it is when another instance changed it meanwhile", async ({
    stores: [a, b],
    sql,
  }) => {
    // Scenario: A records a full battery; B then records it low (B's low-battery event); the same low reading
    // reaches A, which remembers the battery full → A's write finds the row moved on, A decides on the row as
    // stored: nothing new, no second low-battery event.
    await seedDevices(sql, [DEVICE])
    const at = Date.now()
    await a.devices.change(DEVICE, (x) => applyState(x, { locked: true, battery_level: 0.9 }, iso(at)))
    await b.devices.change(DEVICE, (x) => applyState(x, { locked: true, battery_level: 0.1 }, iso(at + 1)))
    const seen = await a.devices.change(DEVICE, (x) => applyState(x, { locked: true, battery_level: 0.1 }, iso(at + 2)))
    expect(seen?.props.battery_level).toBe(0.1)
    const events = await sql('SELECT event_type FROM events WHERE device_id = $1', [DEVICE])
    expect(events.map((e) => e.event_type)).toEqual(['device.low_battery'])
  })
})
