import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterEach, describe, expect, vi } from 'vitest'
import { applyAck, createAttempt, expire, markSent } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import type { PostgresStore } from '../../src/store/postgres/index.js'
import { it, seedDevices, type Sql } from '../helpers/pg-instances.js'

/**
 * A store remembers the pending attempts it wrote last and decides their next transition on that row, written only
 * if the row is still at the version it left (docs/scale-out.md#attempts).
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

/** The texts of the statements every pg client sends meanwhile. */
function statements(): { texts: () => string[] } {
  const query = vi.spyOn(pg.Client.prototype, 'query')
  return {
    texts: () =>
      query.mock.calls.map(([config]) => (typeof config === 'string' ? config : (config as { text: string }).text)),
  }
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
    const sent = statements()
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
})
