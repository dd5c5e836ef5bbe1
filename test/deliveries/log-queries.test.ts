import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedAttemptRows, type SeedManifest } from '../../bench/seed-attempts.js'
import { createDeliveryLog, type DeliveryLogDeps } from '../../src/app/delivery-log.js'
import { createDeliveryStatus, type DeliveryView } from '../../src/app/delivery-status.js'
import type { AttemptOutcome } from '../../src/domain/delivery-log.js'
import type { DeliveryAttempt } from '../../src/domain/delivery.js'
import { EVENT_TYPES } from '../../src/domain/events.js'
import type { DeliveryLogStore } from '../../src/app/store.js'
import { openDatabase, type Db } from '../../src/store/sqlite/database.js'
import { SqliteDeliveryLog } from '../../src/store/sqlite/delivery-log.js'
import { seededRandom } from '../../simulator/behaviour.js'
import { tempDataDir } from '../helpers/latchkey.js'
import { deliveryLogUnderTest } from '../helpers/store.js'

/**
 * The keyset listings against a brute-force model, on a seeded log where many attempts share a time (an event's
 * deliveries are all tried in the same millisecond): every page in both directions, and the query plans.
 */

interface Row {
  seq: number
  attempt_id: string
  workspace_id: string
  webhook_id: string
  event_id: string
  event_type: string
  status: 'success' | 'failed'
  will_retry: number
  attempted_at: string
}

interface Scheduled {
  seq: number
  workspace_id: string
  webhook_id: string
  event_id: string
  next_attempt_at: string
}

let db: Db
/** The log the model tests page through: SQLite's, or a copy of the same rows on PostgreSQL (npm run test:pg). */
let logUnderTest: { log: DeliveryLogStore; close: () => Promise<void> }
let manifest: SeedManifest
let rows: Row[]
let scheduled: Scheduled[]

beforeAll(async () => {
  db = openDatabase(`${tempDataDir()}/latchkey.db`)
  manifest = seedAttemptRows(db, {
    attempts: 2500,
    tenants: 3,
    webhooksPerTenant: 3,
    days: 10,
    now: Date.parse('2026-06-01T00:00:00Z'),
    seed: 3,
  })
  rows = db
    .prepare(
      'SELECT seq, attempt_id, workspace_id, webhook_id, event_id, event_type, status, will_retry, attempted_at FROM delivery_attempts',
    )
    .all() as Row[]
  scheduled = db
    .prepare(
      "SELECT seq, workspace_id, webhook_id, event_id, next_attempt_at FROM deliveries WHERE status = 'pending' AND held = 0 AND next_attempt_at IS NOT NULL",
    )
    .all() as Scheduled[]
  logUnderTest = await deliveryLogUnderTest(db)
})

afterAll(async () => {
  await logUnderTest.close()
  db.close()
  rmSync(dirname(db.name), { recursive: true, force: true })
})

const outcomeOf = (r: Row): AttemptOutcome =>
  r.status === 'success' ? 'delivered' : r.will_retry ? 'retrying' : 'failed'
const byTime = (a: { t: string; seq: number; k: number }, b: { t: string; seq: number; k: number }) =>
  a.t !== b.t ? (a.t < b.t ? -1 : 1) : a.seq !== b.seq ? a.seq - b.seq : a.k - b.k

function subset<T>(items: readonly T[], draw: () => number): T[] | undefined {
  if (draw() < 0.5) return undefined
  const kept = items.filter(() => draw() < 0.4)
  return kept.length > 0 ? kept : [items[0] as T]
}

function service() {
  const log = logUnderTest.log
  const unused = {} as DeliveryLogDeps['store']
  const outpost = createDeliveryLog({
    log,
    store: unused,
    manual: { attemptManually: async () => {} },
    tokens: { issue: async () => '', verify: async () => undefined },
    onError: () => {},
  })
  const v1 = createDeliveryStatus({
    log,
    store: { workspaces: { get: async (id) => ({ workspace_id: id, name: '', created_at: '' }) } },
  })
  return { log, outpost, v1 }
}

describe('delivery log listings', () => {
  it('pages every filter combination forwards and backwards exactly like a brute-force model', async () => {
    // Scenario: 40 random combinations of tenant, destination, topic, status, time and direction, in pages of 5–60.
    const { outpost } = service()
    const draw = seededRandom(11)
    const times = rows.map((r) => r.attempted_at).sort()
    // Ties are what keyset pagination gets wrong first: many attempts share their time here.
    expect(new Set(times).size).toBeLessThan(times.length * 0.8)
    for (let round = 0; round < 40; round++) {
      const tenants = subset(
        manifest.tenants.map((t) => t.workspace_id),
        draw,
      )
      const destinations =
        draw() < 0.3
          ? subset(
              manifest.tenants.flatMap((t) => t.webhooks),
              draw,
            )
          : undefined
      const topics = draw() < 0.3 ? subset(EVENT_TYPES, draw) : undefined
      const events = draw() < 0.1 ? [rows[Math.floor(draw() * rows.length)]?.event_id as string] : undefined
      const status = draw() < 0.3 ? (draw() < 0.5 ? 'success' : 'failed') : undefined
      const gte = draw() < 0.3 ? times[Math.floor(draw() * times.length)] : undefined
      const dir = draw() < 0.5 ? 'asc' : 'desc'
      const limit = 5 + Math.floor(draw() * 56)
      const want = rows
        .filter(
          (r) =>
            (!tenants || tenants.includes(r.workspace_id)) && (!destinations || destinations.includes(r.webhook_id)),
        )
        .filter(
          (r) =>
            (!topics || topics.includes(r.event_type as (typeof topics)[number])) &&
            (!events || events.includes(r.event_id)),
        )
        .filter((r) => (!status || r.status === status) && (!gte || r.attempted_at >= gte))
        .map((r) => ({ t: r.attempted_at, seq: r.seq, k: 0, id: r.attempt_id }))
        .sort((a, b) => (dir === 'asc' ? byTime(a, b) : byTime(b, a)))
        .map((r) => r.id)
      const input = {
        tenantIds: tenants,
        destinationIds: destinations,
        topics,
        eventIds: events,
        status,
        time: gte ? { gte } : undefined,
        dir,
        limit,
      } as const
      const label = JSON.stringify(input)

      const seen: string[] = []
      let page = await outpost.listAttempts({ kind: 'admin' }, input)
      seen.push(...page.items.map((a) => a.attempt_id))
      expect(page.prev, label).toBeNull()
      while (page.next) {
        page = await outpost.listAttempts({ kind: 'admin' }, { ...input, next: page.next })
        seen.push(...page.items.map((a: DeliveryAttempt) => a.attempt_id))
        expect(page.items.length, label).toBeLessThanOrEqual(limit)
      }
      expect(seen, label).toEqual(want)

      const back = page.items.map((a) => a.attempt_id)
      while (page.prev) {
        page = await outpost.listAttempts({ kind: 'admin' }, { ...input, prev: page.prev })
        back.unshift(...page.items.map((a) => a.attempt_id))
      }
      expect(back, label).toEqual(want)
    }
  })

  it('lists a tenant newest first with its scheduled attempts, for every v1 status and filter', async () => {
    // Scenario: each tenant × status × destination/event filter, in pages of 1–15, against the model.
    const { v1 } = service()
    const draw = seededRandom(5)
    expect(scheduled.length).toBeGreaterThan(0)
    for (const tenant of manifest.tenants) {
      for (const status of [undefined, 'delivered', 'retrying', 'failed', 'pending'] as const) {
        const destination = draw() < 0.4 ? tenant.webhooks[Math.floor(draw() * tenant.webhooks.length)] : undefined
        const mine = rows.filter(
          (r) => r.workspace_id === tenant.workspace_id && (!destination || r.webhook_id === destination),
        )
        const waiting = scheduled.filter(
          (s) => s.workspace_id === tenant.workspace_id && (!destination || s.webhook_id === destination),
        )
        const want = [
          ...(status === 'pending'
            ? []
            : mine
                .filter((r) => !status || outcomeOf(r) === status)
                .map((r) => ({ t: r.attempted_at, seq: r.seq, k: 0, id: r.attempt_id }))),
          ...(status === undefined || status === 'pending'
            ? waiting.map((s) => ({ t: s.next_attempt_at, seq: s.seq, k: 1, id: `pending:${s.seq}` }))
            : []),
        ]
          .sort((a, b) => byTime(b, a))
          .map((r) => r.id)
        const limit = 1 + Math.floor(draw() * 15)
        const seen: DeliveryView[] = []
        let cursor: string | undefined
        do {
          const page = await v1.list({ kind: 'admin' }, tenant.workspace_id, {
            status,
            destinationId: destination,
            limit,
            cursor,
          })
          seen.push(...page.data)
          cursor = page.next_cursor ?? undefined
        } while (cursor)
        const ids = seen.map((d) => (d.status === 'pending' ? `pending:${d.id.split('_')[2]}` : d.id))
        expect(ids, `${status} ${destination}`).toEqual(want)
      }
    }
  })

  it('answers a query with too many ranges to merge by one sorted SELECT, with the same rows', async () => {
    // Scenario: 3 tenants × 40 topics (most never used) × 4 (status, will_retry) pairs = 480 ranges, over 400.
    const log = new SqliteDeliveryLog(db)
    const topics = [...EVENT_TYPES, ...Array.from({ length: 27 }, (_, i) => `unused.topic_${i}`)]
    const query = { tenantIds: manifest.tenants.map((t) => t.workspace_id), topics, dir: 'asc', limit: 50 } as const
    expect(log.explain(query).join('\n')).not.toContain('MERGE')
    const want = rows
      .map((r) => ({ t: r.attempted_at, seq: r.seq, k: 0, id: r.attempt_id }))
      .sort(byTime)
      .slice(0, 50)
      .map((r) => r.id)
    expect((await log.listAttempts(query)).map((a) => a.attempt_id)).toEqual(want)
  })

  it('reads index ranges only: no table scan, and no sort except for the handful of attempts of an event', () => {
    // Scenario: EXPLAIN QUERY PLAN of the main filters of both dialects on the seeded log.
    const log = new SqliteDeliveryLog(db)
    const t = manifest.tenants[0] as SeedManifest['tenants'][number]
    const base = { dir: 'desc', limit: 101 } as const
    const plans: Array<[Parameters<SqliteDeliveryLog['explain']>[0], string]> = [
      [{ ...base }, 'delivery_attempts_by_topic'],
      [{ ...base, topics: ['lock.locked'], outcomes: ['failed'] }, 'delivery_attempts_by_topic'],
      [{ ...base, tenantIds: [t.workspace_id] }, 'delivery_attempts_by_tenant '],
      [{ ...base, tenantIds: [t.workspace_id], outcomes: ['retrying', 'failed'] }, 'delivery_attempts_by_tenant '],
      [
        { ...base, tenantIds: [t.workspace_id], destinationIds: [t.webhooks[1] as string] },
        'delivery_attempts_by_destination',
      ],
      [
        { ...base, tenantIds: [t.workspace_id], topics: ['lock.locked', 'device.added'] },
        'delivery_attempts_by_tenant ',
      ],
      [
        { ...base, destinationIds: [t.webhooks[0] as string], topics: ['lock.locked'] },
        'delivery_attempts_by_destination',
      ],
      [
        { ...base, tenantIds: [t.workspace_id], time: { gte: manifest.from, lt: manifest.to } },
        'attempted_at>? AND attempted_at<?',
      ],
      [
        { ...base, dir: 'asc', tenantIds: [t.workspace_id], after: { time: manifest.from, seq: 10, scheduled: false } },
        'delivery_attempts_by_tenant ',
      ],
      [{ tenantId: t.workspace_id, limit: 21 }, 'deliveries_scheduled'],
      [
        { tenantId: t.workspace_id, limit: 21, status: 'failed', destinationId: t.webhooks[2] as string },
        'delivery_attempts_by_destination',
      ],
    ]
    for (const [query, index] of plans) {
      const plan = log.explain(query).join('\n')
      expect(plan, JSON.stringify(query)).toContain(index)
      expect(plan, JSON.stringify(query)).not.toMatch(/SCAN|TEMP B-TREE/)
      // Each type's range is sought by its key (migration 5), not checked row by row.
      if (!('tenantId' in query)) expect(plan, JSON.stringify(query)).toContain('event_type_key=? AND status=?')
    }
    const event = log.explain({ ...base, eventIds: [rows[0]?.event_id as string] }).join('\n')
    expect(event).toContain('SEARCH delivery_attempts USING INDEX delivery_attempts_by_delivery (delivery_seq=?)')
    expect(event).not.toMatch(/SCAN/)
  })
})
