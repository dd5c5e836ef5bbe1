import { randomUUID } from 'node:crypto'
import { describe, expect, vi } from 'vitest'
import type { DeliveryClaims, RecordedAttempt } from '../../src/app/store.js'
import { applyAck, expire } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import {
  attemptRecord,
  decideAfterAttempt,
  type RetryPolicy,
  type SendFailure,
} from '../../src/domain/webhook-delivery.js'
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres/index.js'
import { createDevice } from '../helpers/devices.js'
import { it as base } from '../helpers/cluster.js'
import { request } from '../helpers/latchkey.js'
import { queryPostgres as query } from '../helpers/store.js'

/**
 * Instances racing on one PostgreSQL (docs/scale-out.md#concurrency): the outcome rests on constraints and row
 * locks, never on one process's memory.
 */
const it = base.extend<{ database: string }>({
  database: async ({ createDatabase }, use) => {
    await use(await createDatabase('latchkey_races'))
  },
})

describe('instances racing on one PostgreSQL', () => {
  it('one Idempotency-Key sent to two instances at once makes one attempt, and every answer names it', async ({
    database,
    start,
  }) => {
    // Scenario: 12 lock requests with one Idempotency-Key, 6 through A and 6 through B, all at once → 12 answers
    // with the same attempt; one row holds the key.
    const env = { DATABASE_URL: database }
    const a = await start({ env: { ...env, INSTANCE_ID: 'a' } })
    const b = await start({ env: { ...env, INSTANCE_ID: 'b' } })
    const device = await createDevice(a, 'raced')
    const key = `race-${randomUUID()}`
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        request((i % 2 ? b : a).lk.httpUrl, '/locks/lock_door', { device_id: device.deviceId }, a.apiKey, {
          'idempotency-key': key,
        }),
      ),
    )
    for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    const ids = new Set(answers.map((answer) => answer.body.action_attempt.action_attempt_id as string))
    expect(ids.size).toBe(1)
    const rows = await query(database, 'SELECT action_attempt_id FROM action_attempts WHERE idempotency_key = $1', [
      key,
    ])
    expect(rows.map((row) => row.action_attempt_id)).toEqual([...ids])
  })

  it("one instance's deadline sweep racing another's ack settles each attempt once, with one event", async ({
    database,
    defer,
  }) => {
    // Scenario: 30 pending attempts past their deadline; store A sweeps them while store B applies an ack to each,
    // all at once → each attempt settled by exactly one of them, one action_attempt.* event each.
    const stores = await openStores(database, defer)
    const ids = await seedPendingAttempts(database, 30)
    const at = () => iso(Date.now())
    const [swept, ...acked] = await Promise.all([
      (stores[0] as PostgresStore).attempts.expireDue?.(at(), 100, (attempt) => expire(attempt, at())),
      ...ids.map((id) =>
        (stores[1] as PostgresStore).attempts.transition(id, (attempt) =>
          applyAck(attempt, { command_id: id, status: 'success' }, at()),
        ),
      ),
    ])
    const settles = [...(swept ?? []), ...acked].filter((t) => t?.settled)
    expect(settles).toHaveLength(30)
    expect(new Set(settles.map((t) => t?.attempt.action_attempt_id)).size).toBe(30)
    const events = await query(
      database,
      `SELECT action_attempt_id, count(*)::int AS n FROM events WHERE event_type LIKE 'action_attempt.%'
       GROUP BY action_attempt_id`,
    )
    expect(events).toHaveLength(30)
    for (const row of events) expect(row.n).toBe(1)
  })

  it('a delivery lease: one holder until it lapses, never before the delivery is due', async ({ database, defer }) => {
    // Scenario: two owed deliveries, due now. A claims the first → B cannot, A can again; after the lease lapses B
    // can. claimDue by B takes only the one nobody holds; a delivery due later is nobody's yet; released, anybody's.
    const [a, b] = (await openStores(database, defer)).map((store) => store.deliveryClaims)
    if (!a || !b) throw new Error('a PostgreSQL store has delivery claims')
    await seedDeliveries(database, 2)
    const [first, second] = (await query(database, 'SELECT seq::int AS seq FROM deliveries ORDER BY seq')).map(
      (row) => row.seq as number,
    ) as [number, number]
    const t0 = Date.now()
    const at = (ms: number) => iso(t0 + ms)
    expect(await claimOne(a, first, 'a', at(0), at(3000))).toBe(true)
    expect(await claimOne(b, first, 'b', at(1000), at(4000))).toBe(false)
    expect(await claimOne(a, first, 'a', at(1000), at(4000))).toBe(true)
    expect((await b.claimDue('b', at(1000), at(4000), 10)).map((ref) => ref.seq)).toEqual([second])
    expect(await claimOne(b, first, 'b', at(4001), at(7000))).toBe(true)
    expect(await claimOne(a, first, 'a', at(4002), at(7000))).toBe(false)
    await b.release(first, 'b')
    expect(await claimOne(a, first, 'a', at(4003), at(7000))).toBe(true)
    // The second is not due before its next_attempt_at, whoever asks.
    await query(database, 'UPDATE deliveries SET next_attempt_at = $1, lease_owner = NULL WHERE seq = $2', [
      at(60_000),
      second,
    ])
    expect(await claimOne(b, second, 'b', at(5000), at(8000))).toBe(false)
    expect(await b.claimDue('b', at(5000), at(8000), 10)).toEqual([])
    // Later, both are due and A's lease on the first has lapsed (at 7 s): B's poll takes both.
    expect((await b.claimDue('b', at(60_000), at(63_000), 10)).map((ref) => ref.seq)).toEqual([first, second])
  })

  it('a transaction that queues deliveries wakes the other instances (latchkey_outbox)', async ({
    database,
    defer,
  }) => {
    // Scenario: store A listens for queued deliveries; store B's sweep settles an attempt whose event goes to an
    // enabled webhook → A is told once, without polling.
    const [a, b] = (await openStores(database, defer)) as [PostgresStore, PostgresStore]
    const [id] = await seedPendingAttempts(database, 1)
    let woken = 0
    a.deliveryClaims?.onQueued(() => woken++)
    // A's listening connection has issued its LISTEN.
    await vi.waitFor(
      async () => {
        const listening = await query(database, "SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN latchkey_outbox'")
        expect(listening).toHaveLength(1)
      },
      { timeout: 5000, interval: 20 },
    )
    await query(
      database,
      `INSERT INTO webhooks (webhook_id, workspace_id, url, event_types, secret, created_at, updated_at)
       VALUES ('wh', 'ws', 'http://127.0.0.1:9/hook', '["action_attempt.*"]', 'whsec_x', $1, $1)`,
      [iso(Date.now())],
    )
    const settled = await b.attempts.expireDue?.(iso(Date.now()), 10, (attempt) => expire(attempt, iso(Date.now())))
    expect(settled?.map((t) => t.attempt.action_attempt_id)).toEqual([id])
    await vi.waitFor(() => expect(woken).toBe(1), { timeout: 5000, interval: 10 })
  })

  it('two stores recording failed attempts of one webhook at once count every failure, and disable it once', async ({
    database,
    defer,
  }) => {
    // Scenario: 40 deliveries to one webhook; their failed attempts recorded at once, alternately by two stores
    // (two instances' writers) → consecutive_failures is 40, not what either saw; with disable-after 30, exactly
    // one recording disables the webhook.
    const stores = await openStores(database, defer)
    const webhookId = await seedDeliveries(database, 40)
    const seqs = (await query(database, 'SELECT seq::int AS seq FROM deliveries ORDER BY seq')).map(
      (row) => row.seq as number,
    )
    const policy: RetryPolicy = { scheduleSeconds: [3600], disableAfter: 30, random: () => 0.5 }
    const recorded = await Promise.all(
      seqs.map((seq, i) => {
        const nowMs = Date.now()
        return (stores[i % 2] as PostgresStore).deliveries.recordAttempt(
          {
            delivery_seq: seq,
            attempted_at: iso(nowMs),
            duration_ms: 1,
            response_code: 500,
            response_headers: {},
            response_body: '',
            error_message: null,
            signature: 'v1,x',
            manual: false,
          },
          (ctx) => attemptRecord(decideAfterAttempt({ kind: 'failure', failure: failed500 }, ctx, policy, nowMs), ctx),
        )
      }),
    )
    const [webhook] = await query(
      database,
      'SELECT consecutive_failures, enabled, disabled_reason FROM webhooks WHERE webhook_id = $1',
      [webhookId],
    )
    expect(webhook?.consecutive_failures).toBe(40)
    expect(webhook?.enabled).toBe(false)
    const disabling = recorded.filter((r): r is RecordedAttempt => r?.decision.disable != null)
    expect(disabling).toHaveLength(1)
    const attempts = await query(database, 'SELECT count(*)::int AS n FROM delivery_attempts')
    expect(attempts[0]?.n).toBe(40)
  })
})

/** Whether `owner` took the lease of the one delivery `seq`. */
async function claimOne(claims: DeliveryClaims, seq: number, owner: string, now: string, until: string) {
  return (await claims.claim([seq], owner, now, until)).includes(seq)
}

/** Two stores on one database, as two instances hold them. */
async function openStores(url: string, defer: (close: () => unknown) => void): Promise<PostgresStore[]> {
  const stores: PostgresStore[] = []
  for (let i = 0; i < 2; i++) {
    const store = await createPostgresStore({ url, newId: randomUUID, now: () => iso(Date.now()) })
    defer(() => store.close())
    stores.push(store)
  }
  return stores
}

/** `n` pending LOCK_DOOR attempts of one device, whose deadline has passed; returns their ids. */
async function seedPendingAttempts(url: string, n: number): Promise<string[]> {
  const created = iso(Date.now() - 10_000)
  const deadline = iso(Date.now() - 1000)
  await query(url, `INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('ws', 'races', $1)`, [created])
  const ids = Array.from({ length: n }, () => randomUUID())
  await query(
    url,
    `INSERT INTO action_attempts (action_attempt_id, workspace_id, device_id, action_type, status, created_at,
       updated_at, sent_at, deadline_at)
     SELECT id, 'ws', 'dev', 'LOCK_DOOR', 'pending', $2, $2, $2, $3 FROM unnest($1::text[]) AS id`,
    [ids, created, deadline],
  )
  return ids
}

const failed500: SendFailure = { stage: 'http_status', code: 500 }

/** One workspace, one webhook and `n` events each owing it one delivery; returns the webhook's id. */
async function seedDeliveries(url: string, n: number): Promise<string> {
  const at = iso(Date.now())
  const webhookId = randomUUID()
  await query(url, `INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('ws', 'races', $1)`, [at])
  await query(
    url,
    `INSERT INTO webhooks (webhook_id, workspace_id, url, event_types, secret, created_at, updated_at)
     VALUES ($1, 'ws', 'http://127.0.0.1:9/hook', '["*"]', 'whsec_x', $2, $2)`,
    [webhookId, at],
  )
  for (let i = 0; i < n; i++) {
    const eventId = randomUUID()
    await query(
      url,
      `WITH e AS (INSERT INTO events (event_id, workspace_id, event_type, created_at, body)
         VALUES ($1, 'ws', 'device.added', $2, '{}') RETURNING seq)
       INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, next_attempt_at,
         created_at, updated_at)
       SELECT e.seq, $1, $3, 'ws', 'device.added', 'pending', $2, $2, $2 FROM e`,
      [eventId, at, webhookId],
    )
  }
  return webhookId
}
