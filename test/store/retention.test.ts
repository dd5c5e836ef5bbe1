import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, vi } from 'vitest'
import { newId } from '../../src/app/ids.js'
import { createRetention } from '../../src/app/retention.js'
import type { PruneResult, Store } from '../../src/app/store.js'
import { applyAck, createAttempt, type AttemptRecord } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import { attemptRecord } from '../../src/domain/webhook-delivery.js'
import { newWebhook, type Webhook } from '../../src/domain/webhook.js'
import { openDatabase } from '../../src/store/sqlite/database.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'

const DAY = 24 * 60 * 60 * 1000
const RETENTION = { days: 90, ms: 90 * DAY }
const WS = '01900000-0000-7000-8000-0000000000aa'
const DEVICE = '01900000-0000-7000-8000-0000000000bb'

/** A SQLite store in a file of a fresh data dir, on a fake clock; closed and removed after the test. */
const it = base.extend<{ db: { store: Store; clock: FakeClock; file: string } }>({
  db: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    const clock = new FakeClock()
    const file = join(dir, 'latchkey.db')
    const store = createSqliteStore({ filename: file, newId, now: () => iso(clock.now()) })
    defer(() => store.close())
    await use({ store, clock, file })
  },
})

async function addWebhook(store: Store, clock: FakeClock): Promise<Webhook> {
  const at = iso(clock.now())
  const webhook = newWebhook(
    {
      webhook_id: newId(),
      workspace_id: WS,
      url: 'https://receiver.example/hook',
      event_types: ['*'],
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    },
    at,
  )
  await store.webhooks.create(webhook)
  return webhook
}

/** An attempt, pending or settled by a success ack (two events, each with a delivery per webhook). */
async function addAttempt(
  store: Store,
  clock: FakeClock,
  settle: boolean,
  idempotencyKey: string | null = null,
): Promise<AttemptRecord> {
  const now = iso(clock.now())
  const { attempt, history, events } = createAttempt(
    {
      action_attempt_id: newId(),
      action_type: 'LOCK_DOOR',
      device_id: DEVICE,
      workspace_id: WS,
      now,
      deadline_at: iso(clock.now() + 8000),
      idempotency_key: idempotencyKey,
      request_hash: idempotencyKey && 'hash',
    },
    true,
  )
  await store.attempts.create(attempt, history, events)
  if (!settle) return attempt
  const t = await store.attempts.transition(attempt.action_attempt_id, (a) =>
    applyAck(a, { command_id: a.action_attempt_id, status: 'success' }, now),
  )
  return t?.attempt ?? attempt
}

/** Delivers every pending delivery after `afterSeq` with one successful attempt; returns the highest seq. */
async function deliverAll(store: Store, clock: FakeClock, afterSeq: number, keep: Set<number> = new Set()) {
  let last = afterSeq
  for (const ref of await store.deliveries.listAfter(afterSeq, 100_000)) {
    last = ref.seq
    if (keep.has(ref.seq)) continue
    await store.deliveries.recordAttempt(
      {
        delivery_seq: ref.seq,
        attempted_at: iso(clock.now()),
        duration_ms: 3,
        response_code: 200,
        response_headers: null,
        response_body: 'ok',
        error_message: null,
        signature: 'v1,x',
        manual: false,
      },
      (ctx) => attemptRecord({ kind: 'delivered' }, ctx),
    )
  }
  return last
}

/** Runs batches until one reports nothing more (bounded). */
async function pruneAll(store: Store, clock: FakeClock, limit = 50): Promise<PruneResult[]> {
  const results: PruneResult[] = []
  for (let i = 0; i < 1000; i++) {
    const result = await store.retention.prune(
      { before: iso(clock.now() - RETENTION.ms), keysBefore: iso(clock.now() - DAY) },
      limit,
    )
    results.push(result)
    if (!result.more) return results
  }
  throw new Error('retention did not finish in 1000 batches')
}

function count(file: string, sql: string): number {
  const db = openDatabase(file)
  try {
    return (db.prepare(sql).get() as { n: number }).n
  } finally {
    db.close()
  }
}

describe('retention', () => {
  it('deletes settled attempts, finished deliveries and unneeded events past retention, and nothing owed', async ({
    db: { store, clock, file },
  }) => {
    // Scenario: old rows of every kind, some still owed; 91 days later, new rows too; retention runs to the end.
    const webhook = await addWebhook(store, clock)
    const oldSettled = await addAttempt(store, clock, true)
    const oldPending = await addAttempt(store, clock, false)
    const refs = await store.deliveries.listAfter(0, 100)
    expect(refs).toHaveLength(2)
    const owed = refs[1]?.seq as number
    const seq = await deliverAll(store, clock, 0, new Set([owed]))
    const owedRecord = await store.deliveries.listPending(webhook.webhook_id, 0, 10)
    expect(owedRecord.map((r) => r.seq)).toEqual([owed])

    clock.advance(RETENTION.ms - 2 * DAY)
    const keyedOld = await addAttempt(store, clock, true, 'key-old')
    clock.advance(2 * DAY + 1000)
    const keyedNew = await addAttempt(store, clock, true, 'key-new')
    const fresh = await addAttempt(store, clock, true)
    await deliverAll(store, clock, seq)

    const results = await pruneAll(store, clock)
    const total = (k: keyof Omit<PruneResult, 'more'>) => results.reduce((n, r) => n + r[k], 0)
    expect(total('attempts')).toBe(1)
    expect(total('deliveries')).toBe(1)
    expect(total('events')).toBe(1)
    expect(total('idempotencyKeys')).toBe(1)

    // Old and settled: gone, with its history. Pending: kept, however old.
    expect(await store.attempts.getById(oldSettled.action_attempt_id)).toBeUndefined()
    expect(await store.attempts.history(oldSettled.action_attempt_id)).toEqual([])
    expect(await store.attempts.getById(oldPending.action_attempt_id)).toMatchObject({ status: 'pending' })
    expect((await store.attempts.history(oldPending.action_attempt_id)).length).toBeGreaterThan(0)
    // The delivered one went with its attempts; the owed one stays, and so does the event it needs.
    expect(count(file, `SELECT count(*) AS n FROM deliveries WHERE seq <= ${owed}`)).toBe(1)
    expect(count(file, `SELECT count(*) AS n FROM delivery_attempts WHERE delivery_seq < ${owed}`)).toBe(0)
    const owedPlan = await store.deliveries.loadForAttempt(owed)
    expect(owedPlan?.body).toContain(oldSettled.action_attempt_id)
    // New rows stay whole.
    expect(await store.attempts.getById(fresh.action_attempt_id)).toMatchObject({ status: 'success' })
    expect(await store.attempts.getById(keyedOld.action_attempt_id)).toMatchObject({ status: 'success' })
    expect(count(file, 'SELECT count(*) AS n FROM delivery_attempts')).toBe(6)
    // Keys past their 24 h are freed; a key of today still replays.
    expect(await store.attempts.findByIdempotencyKey(WS, 'key-old')).toBeUndefined()
    expect(await store.attempts.findByIdempotencyKey(WS, 'key-new')).toMatchObject({
      action_attempt_id: keyedNew.action_attempt_id,
    })

    // Once the owed delivery is delivered, the next round takes it and its event.
    await deliverAll(store, clock, owed - 1)
    await pruneAll(store, clock)
    expect(count(file, `SELECT count(*) AS n FROM deliveries WHERE seq <= ${owed}`)).toBe(0)
    expect(await store.deliveries.loadForAttempt(owed)).toBeUndefined()
    expect(await store.attempts.getById(oldPending.action_attempt_id)).toMatchObject({ status: 'pending' })
  })

  it('keeps the file from growing: space freed by retention is reused', async ({ db: { store, clock, file } }) => {
    // Scenario: five cycles of filling 300 attempts (events, deliveries, delivery attempts), then 91 days.
    await addWebhook(store, clock)
    let seq = 0
    const pages: number[] = []
    const sqlite = openDatabase(file)
    try {
      for (let cycle = 0; cycle < 5; cycle++) {
        for (let i = 0; i < 300; i++) await addAttempt(store, clock, true)
        seq = await deliverAll(store, clock, seq)
        clock.advance(RETENTION.ms + DAY)
        await pruneAll(store, clock, 200)
        // Everything is past retention but the newest row of each table, kept so that seqs are never reused.
        expect(count(file, 'SELECT count(*) AS n FROM action_attempts')).toBe(1)
        expect(count(file, 'SELECT count(*) AS n FROM events')).toBe(1)
        expect(count(file, 'SELECT count(*) AS n FROM deliveries')).toBe(1)
        expect(count(file, 'SELECT count(*) AS n FROM delivery_attempts')).toBe(1)
        expect(count(file, 'SELECT json_array_length(history) AS n FROM action_attempts')).toBe(3)
        expect(count(file, 'SELECT max(seq) AS n FROM deliveries')).toBe(seq)
        expect(sqlite.pragma('freelist_count', { simple: true })).toBeGreaterThan(0)
        pages.push(sqlite.pragma('page_count', { simple: true }) as number)
      }
    } finally {
      sqlite.close()
    }
    // After the first cycle, new rows land in the pages the previous cycle freed.
    for (const n of pages.slice(1)) expect(n).toBeLessThanOrEqual((pages[0] as number) * 1.05)
  })

  it('runs one bounded batch per tick of the clock, then idles', async ({ db: { store, clock, file } }) => {
    // Scenario: 50 old settled attempts, batches of 10, a 100 ms pause between batches and a minute when idle.
    for (let i = 0; i < 50; i++) await addAttempt(store, clock, true)
    clock.advance(RETENTION.ms + 1)
    const fresh = await addAttempt(store, clock, true)
    const batches: PruneResult[] = []
    const retention = createRetention({
      store,
      clock,
      retentionDays: RETENTION.days,
      batchSize: 10,
      batchPauseMs: 100,
      idleMs: 60_000,
      onError: (error) => {
        throw error
      },
      onBatch: (result) => batches.push(result),
    })
    retention.start()
    try {
      // One batch per tick, never more than 10 rows of a table, until a batch finds nothing more.
      for (let i = 1; batches.at(-1)?.more !== false; i++) {
        expect(i).toBeLessThanOrEqual(20)
        expect(batches).toHaveLength(i - 1)
        clock.advance(100)
        await vi.waitFor(() => expect(batches).toHaveLength(i))
        expect(batches[i - 1]?.attempts).toBeLessThanOrEqual(10)
        expect(batches[i - 1]?.events).toBeLessThanOrEqual(10)
      }
      expect(batches.reduce((n, b) => n + b.attempts, 0)).toBe(50)
      expect(batches.reduce((n, b) => n + b.events, 0)).toBe(100)
      expect(count(file, 'SELECT count(*) AS n FROM action_attempts')).toBe(1)
      expect(await store.attempts.getById(fresh.action_attempt_id)).toMatchObject({ status: 'success' })
      // Idle: nothing until the minute is up (a batch that ran would be counted by the time of the next turn).
      const done = batches.length
      clock.advance(59_999)
      await new Promise<void>((resolve) => setImmediate(resolve))
      expect(clock.pending).toBe(1)
      expect(batches).toHaveLength(done)
      clock.advance(1)
      await vi.waitFor(() => expect(batches).toHaveLength(done + 1))
    } finally {
      retention.stop()
    }
    expect(clock.pending).toBe(0)
  })
})
