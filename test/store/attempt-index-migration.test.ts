import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { seedAttemptRows } from '../../bench/seed-attempts.js'
import { newId } from '../../src/app/ids.js'
import { iso } from '../../src/domain/clock.js'
import type { AttemptLogQuery, AttemptOutcome } from '../../src/domain/delivery-log.js'
import { attemptRecord, decideAfterAttempt, responseResult } from '../../src/domain/webhook-delivery.js'
import { DELIVERY_ATTEMPT_COLUMNS } from '../../src/store/rows.js'
import { openDatabase, schemaVersion, type Db } from '../../src/store/sqlite/database.js'
import { SqliteDeliveryLog } from '../../src/store/sqlite/delivery-log.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { EVENT_TYPE_KEYS, MIGRATIONS } from '../../src/store/sqlite/migrations.js'
import { it } from '../helpers/latchkey.js'

/**
 * Migration 5 keys the delivery-attempt listing indexes by a small integer per event type, so that at 512-byte pages
 * every entry fits in its page (docs/performance.md#fourth-pass-index-entries-that-fit-their-page).
 */

const LISTING_INDEXES = [
  'delivery_attempts_by_topic',
  'delivery_attempts_by_tenant',
  'delivery_attempts_by_destination',
]
/** A type migration 5 does not know: keyed by its name. */
const NEW_TYPE = 'device.renamed'

interface Row {
  seq: number
  attempt_id: string
  workspace_id: string
  webhook_id: string
  event_type: string
  status: string
  will_retry: number
  attempted_at: string
}

/** Pages of the listing indexes by kind: an entry longer than a page may keep spills onto an overflow page. */
function indexPages(db: Db): { overflow: number; leaf: number } {
  const rows = db
    .prepare(
      `SELECT pagetype, count(*) AS n FROM dbstat WHERE name IN (${LISTING_INDEXES.map(() => '?').join()}) GROUP BY pagetype`,
    )
    .all(...LISTING_INDEXES) as Array<{ pagetype: string; n: number }>
  const count = (type: string) => rows.find((row) => row.pagetype === type)?.n ?? 0
  return { overflow: count('overflow'), leaf: count('leaf') }
}

function attemptRows(db: Db): Array<Record<string, unknown>> {
  return db.prepare(`SELECT ${DELIVERY_ATTEMPT_COLUMNS} FROM delivery_attempts ORDER BY seq`).all() as Array<
    Record<string, unknown>
  >
}

const outcomeOf = (r: Row): AttemptOutcome =>
  r.status === 'success' ? 'delivered' : r.will_retry ? 'retrying' : 'failed'

/** What a listing must return: the matching attempts by (attempted_at, seq). */
type Filter = Omit<AttemptLogQuery, 'dir' | 'limit'>

/** The attempt ids `query` selects, oldest first: what a listing must return, read off the rows themselves. */
function model(rows: Row[], query: Filter): string[] {
  const { tenantIds, destinationIds, topics, outcomes } = query
  return rows
    .filter(
      (r) =>
        (!tenantIds || tenantIds.includes(r.workspace_id)) &&
        (!destinationIds || destinationIds.includes(r.webhook_id)) &&
        (!topics || topics.includes(r.event_type)) &&
        (!outcomes || outcomes.includes(outcomeOf(r))),
    )
    .sort((a, b) => (a.attempted_at !== b.attempted_at ? (a.attempted_at < b.attempted_at ? -1 : 1) : a.seq - b.seq))
    .map((r) => r.attempt_id)
}

/** Lists `query` through the store, oldest first and newest first, and checks each against the model. */
async function expectListed(log: SqliteDeliveryLog, rows: Row[], query: Filter): Promise<void> {
  const want = model(rows, query)
  expect(want.length, JSON.stringify(query)).toBeGreaterThan(0)
  for (const dir of ['asc', 'desc'] as const) {
    const got = await log.listAttempts({ ...query, dir, limit: rows.length })
    expect(
      got.map((x) => x.attempt_id),
      `${dir} ${JSON.stringify(query)}`,
    ).toEqual(dir === 'asc' ? want : [...want].reverse())
  }
}

describe('migration 5: delivery-attempt listing indexes keyed by event type', () => {
  it('rebuilds the indexes of a version-4 database: the same rows, the same listings, no entry on an overflow page', async ({
    dir,
  }) => {
    // Scenario: a version-4 database with 1,500 seeded attempts (UUID ids, every event type, retries, failures)
    // and three attempts of a type migration 5 does not know; latchkey's store opens it.
    const file = join(dir(), 'latchkey.db')
    const old = openDatabase(file, MIGRATIONS.slice(0, 4))
    expect(schemaVersion(old)).toBe(4)
    const manifest = seedAttemptRows(old, {
      attempts: 1500,
      tenants: 2,
      webhooksPerTenant: 2,
      days: 3,
      now: Date.parse('2026-06-01T00:00:00Z'),
      seed: 7,
    })
    const stored = DELIVERY_ATTEMPT_COLUMNS.replace(/\s+/g, ' ')
    old
      .prepare(
        `INSERT INTO delivery_attempts (${stored.replace('seq, ', '')})
         SELECT ${stored.replace('seq, ', '').replace('attempt_id', "attempt_id || '-renamed'").replace('event_type', '?')}
         FROM delivery_attempts WHERE seq % 500 = 1`,
      )
      .run(NEW_TYPE)
    // Why the migration: at version 4 the entries of `action_attempt.*` attempts spill onto overflow pages.
    expect(indexPages(old).overflow).toBeGreaterThan(0)
    const before = attemptRows(old)
    old.close()

    const db = openDatabase(file)
    try {
      expect(schemaVersion(db)).toBe(MIGRATIONS.length)
      expect(attemptRows(db)).toStrictEqual(before)
      const pages = indexPages(db)
      expect(pages.leaf).toBeGreaterThan(0)
      expect(pages.overflow).toBe(0)

      const rows = db
        .prepare(
          'SELECT seq, attempt_id, workspace_id, webhook_id, event_type, status, will_retry, attempted_at FROM delivery_attempts',
        )
        .all() as Row[]
      expect(rows.filter((r) => r.event_type === NEW_TYPE)).toHaveLength(3)
      // The tenant of an attempt of the new type, and a destination of the other tenant that gets action_attempt.*.
      const tenantA = rows.find((r) => r.event_type === NEW_TYPE)?.workspace_id as string
      const hook = rows.find(
        (r) =>
          r.workspace_id !== tenantA && r.event_type === 'action_attempt.lock_door.succeeded' && r.status === 'success',
      )?.webhook_id as string
      expect(manifest.tenants.map((t) => t.workspace_id)).toContain(tenantA)
      const queries: Filter[] = [
        {},
        { tenantIds: [tenantA] },
        { tenantIds: [tenantA], topics: [NEW_TYPE] },
        { topics: [NEW_TYPE, 'lock.locked'] },
        { destinationIds: [hook] },
        { destinationIds: [hook], topics: ['action_attempt.lock_door.succeeded', NEW_TYPE], outcomes: ['delivered'] },
        { tenantIds: [tenantA], outcomes: ['retrying', 'failed'] },
      ]
      const log = new SqliteDeliveryLog(db)
      for (const query of queries) await expectListed(log, rows, query)
    } finally {
      db.close()
    }
  })

  it('records attempts whose entries all fit their page, and lists a type the migration does not know by its name', async ({
    dir,
  }) => {
    // Scenario: a fresh database, two webhooks with UUID ids, 120 events of the longest types (action_attempt.*),
    // lock.locked and a new type; every delivery attempted once through the store's write path.
    const file = join(dir(), 'latchkey.db')
    const store = createSqliteStore({ filename: file, newId, now: () => iso(Date.now()) })
    const db = openDatabase(file)
    try {
      const types = ['action_attempt.lock_door.succeeded', 'action_attempt.unlock_door.failed', 'lock.locked', NEW_TYPE]
      const at = iso(Date.now())
      const workspace = newId()
      const hooks = [newId(), newId()]
      db.transaction(() => {
        for (const hook of hooks)
          db.prepare(
            `INSERT INTO webhooks (webhook_id, workspace_id, url, event_types, secret, created_at, updated_at)
             VALUES (?, ?, 'http://127.0.0.1:9/hook', '["*"]', 'whsec_test', ?, ?)`,
          ).run(hook, workspace, at, at)
        for (let i = 0; i < 120; i++) {
          const eventId = newId()
          const type = types[i % types.length] as string
          const seq = db
            .prepare('INSERT INTO events (event_id, workspace_id, event_type, created_at, body) VALUES (?, ?, ?, ?, ?)')
            .run(eventId, workspace, type, at, '{}').lastInsertRowid
          for (const hook of hooks)
            db.prepare(
              `INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held,
                 next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
            ).run(seq, eventId, hook, workspace, type, at, at, at)
        }
      })()
      const policy = { scheduleSeconds: [1, 5], disableAfter: 100, random: () => 0.5 }
      const seqs = (db.prepare('SELECT seq FROM deliveries ORDER BY seq').all() as Array<{ seq: number }>).map(
        (row) => row.seq,
      )
      const recorded = await Promise.all(
        seqs.map((seq, i) =>
          store.deliveries.recordAttempt(
            {
              delivery_seq: seq,
              attempted_at: iso(Date.now()),
              duration_ms: 1,
              response_code: i % 3 === 0 ? 500 : 200,
              response_headers: { 'content-type': 'application/json', 'content-length': '11' },
              response_body: '{"ok":true}',
              error_message: null,
              signature: 'v1,bWVhc3VyZWQgc2lnbmF0dXJlIG9mIDMyIGJ5dGVzIQ==',
              manual: false,
            },
            (ctx) =>
              attemptRecord(
                decideAfterAttempt(responseResult(i % 3 === 0 ? 500 : 200, undefined), ctx, policy, Date.now()),
                ctx,
              ),
          ),
        ),
      )
      expect(recorded.every((r) => r !== undefined)).toBe(true)

      const pages = indexPages(db)
      expect(pages.leaf).toBeGreaterThan(0)
      expect(pages.overflow).toBe(0)
      const keys = db
        .prepare('SELECT DISTINCT event_type, event_type_key AS key FROM delivery_attempts ORDER BY event_type')
        .all() as Array<{ event_type: string; key: number | string }>
      expect(keys).toStrictEqual(
        [...types].sort().map((type) => ({
          event_type: type,
          key: EVENT_TYPE_KEYS.includes(type) ? EVENT_TYPE_KEYS.indexOf(type) + 1 : type,
        })),
      )

      const rows = db
        .prepare(
          'SELECT seq, attempt_id, workspace_id, webhook_id, event_type, status, will_retry, attempted_at FROM delivery_attempts',
        )
        .all() as Row[]
      const log = new SqliteDeliveryLog(db)
      for (const query of [
        { topics: [NEW_TYPE] },
        { tenantIds: [workspace] },
        { destinationIds: [hooks[1] as string], topics: [NEW_TYPE, 'lock.locked'], outcomes: ['retrying' as const] },
      ])
        await expectListed(log, rows, query)
    } finally {
      db.close()
      await store.close()
    }
  })
})
