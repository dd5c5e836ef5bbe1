import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { newId } from '../../src/app/ids.js'
import { applyAck, type HistoryEntry } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import { openDatabase, schemaVersion, type Db } from '../../src/store/sqlite/database.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js'
import { ADMIN_KEY, it } from '../helpers/latchkey.js'

const WS = '01900000-0000-7000-8000-0000000000aa'
const DEVICE = '01900000-0000-7000-8000-0000000000bb'
// Recent: retention would delete settled attempts older than its 90 days at start-up.
const T0 = Date.now() - 60_000
const at = (ms: number) => iso(T0 + ms)

/** A database at schema version 3, where an attempt's history is a table of its own. */
function version3(file: string): Db {
  const db = openDatabase(file, MIGRATIONS.slice(0, 3))
  expect(schemaVersion(db)).toBe(3)
  db.prepare('INSERT INTO workspaces (workspace_id, name, created_at) VALUES (?, ?, ?)').run(WS, 'old', at(0))
  return db
}

function addAttempt(db: Db, id: string, status: 'pending' | 'success' | 'error', deadlineMs = 8000): void {
  db.prepare(
    `INSERT INTO action_attempts (action_attempt_id, workspace_id, device_id, action_type, status, result, error,
       created_at, updated_at, deadline_at)
     VALUES (?, ?, ?, 'LOCK_DOOR', ?, ?, ?, ?, ?, ?)`,
  ).run(
    id,
    WS,
    DEVICE,
    status,
    status === 'success' ? '{"was_confirmed_by_device":true}' : null,
    status === 'error' ? '{"type":"lock_jammed","message":"The lock is jammed."}' : null,
    at(0),
    at(100),
    at(deadlineMs),
  )
}

/** Writes entries as the version-3 code did: one row each, detail as JSON text or NULL. */
function addHistory(db: Db, id: string, entry: HistoryEntry): void {
  db.prepare('INSERT INTO attempt_history (action_attempt_id, at, kind, detail) VALUES (?, ?, ?, ?)').run(
    id,
    entry.at,
    entry.kind,
    entry.detail ? JSON.stringify(entry.detail) : null,
  )
}

describe('migration 4: the attempt history as a column', () => {
  it('moves every attempt history of a version-3 database into its row, in order, and the API answers it unchanged', async ({
    dir,
    start,
  }) => {
    // Scenario: three settled attempts whose history rows were written interleaved (as concurrent attempts are),
    // with details (nested, non-ASCII, quotes), and one attempt with no history rows; latchkey starts on the file.
    const dataDir = dir()
    const db = version3(join(dataDir, 'latchkey.db'))
    const [a, b, c, empty] = [newId(), newId(), newId(), newId()]
    addAttempt(db, a, 'success')
    addAttempt(db, b, 'error')
    addAttempt(db, c, 'success')
    addAttempt(db, empty, 'success')
    const jammed = { error: { type: 'lock_jammed', message: 'Riegel klemmt – "jammed" \\ 🔒' } }
    const expected: Record<string, HistoryEntry[]> = {
      [a]: [
        { kind: 'created', at: at(0) },
        { kind: 'sent', at: at(10) },
        { kind: 'accepted', at: at(20) },
        { kind: 'succeeded', at: at(30) },
        { kind: 'duplicate_ack', at: at(40), detail: { status: 'success' } },
      ],
      [b]: [
        { kind: 'created', at: at(0) },
        { kind: 'sent', at: at(11) },
        { kind: 'failed', at: at(31), detail: jammed },
        { kind: 'late_ack', at: at(41), detail: { status: 'error', ...jammed } },
      ],
      // Two entries with the same time: their order is the order they were written in.
      [c]: [
        { kind: 'succeeded', at: at(5) },
        { kind: 'created', at: at(5) },
        { kind: 'republished', at: at(5), detail: {} },
      ],
      [empty]: [],
    }
    const rows = [a, b, c].flatMap((id) => (expected[id] as HistoryEntry[]).map((entry, i) => ({ id, entry, i })))
    rows.sort((x, y) => x.i - y.i)
    for (const { id, entry } of rows) addHistory(db, id, entry)
    db.close()

    const t = await start({ dataDir })
    const admin = { 'seam-workspace': WS }
    for (const [id, history] of Object.entries(expected)) {
      const res = await t.call('/action_attempts/history', { action_attempt_id: id }, ADMIN_KEY, admin)
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      expect(res.body.history).toStrictEqual(history)
    }
    const got = await t.call('/action_attempts/get', { action_attempt_id: b }, ADMIN_KEY, admin)
    expect(got.body.action_attempt).toMatchObject({ status: 'error', error: { type: 'lock_jammed' } })
    await t.close()

    const migrated = openDatabase(join(dataDir, 'latchkey.db'))
    try {
      expect(schemaVersion(migrated)).toBe(MIGRATIONS.length)
      const tables = migrated.prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'attempt_history%'").all()
      expect(tables).toEqual([])
    } finally {
      migrated.close()
    }
  })

  it('appends the entries of later transitions after the migrated ones', async ({ dir }) => {
    // Scenario: a pending attempt migrated with its `created` and `sent` rows; its lock then acks twice. Another,
    // migrated with no rows at all (an empty array), then acks once.
    const file = join(dir(), 'latchkey.db')
    const db = version3(file)
    const id = newId()
    addAttempt(db, id, 'pending', 60_000)
    db.prepare('UPDATE action_attempts SET sent_at = ? WHERE action_attempt_id = ?').run(at(10), id)
    addHistory(db, id, { kind: 'created', at: at(0) })
    addHistory(db, id, { kind: 'sent', at: at(10) })
    const bare = newId()
    addAttempt(db, bare, 'pending', 60_000)
    db.close()

    const store = createSqliteStore({ filename: file, newId, now: () => at(50) })
    try {
      for (const status of ['success', 'success'] as const)
        await store.attempts.transition(id, (attempt) => applyAck(attempt, { command_id: id, status }, at(50)))
      expect(await store.attempts.getById(id)).toMatchObject({ status: 'success', completed_at: at(50) })
      expect(await store.attempts.history(id)).toStrictEqual([
        { kind: 'created', at: at(0) },
        { kind: 'sent', at: at(10) },
        { kind: 'succeeded', at: at(50) },
        { kind: 'duplicate_ack', at: at(50), detail: { status: 'success' } },
      ])
      await store.attempts.transition(bare, (attempt) =>
        applyAck(attempt, { command_id: bare, status: 'success' }, at(60)),
      )
      expect(await store.attempts.history(bare)).toStrictEqual([
        { kind: 'sent', at: at(60) },
        { kind: 'succeeded', at: at(60) },
      ])
    } finally {
      await store.close()
    }
  })
})
