import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { newId } from '../../src/app/ids.js'
import type { Store } from '../../src/app/store.js'
import { applyAck, createAttempt } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import type { AttemptInput } from '../../src/domain/delivery.js'
import { attemptRecord } from '../../src/domain/webhook-delivery.js'
import { newWebhook } from '../../src/domain/webhook.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'

// The SQLite store reads the plans asked for in one turn with one query, and records the attempts of one turn in
// one write job; each caller must still get its own answer, and one failing record must fail alone.

const WS = '01900000-0000-7000-8000-0000000000aa'
const DEVICE = '01900000-0000-7000-8000-0000000000bb'

const it = base.extend<{ db: { store: Store; clock: FakeClock; filename: string } }>({
  db: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    const clock = new FakeClock()
    const filename = join(dir, 'latchkey.db')
    const store = createSqliteStore({ filename, newId, now: () => iso(clock.now()) })
    defer(() => store.close())
    await use({ store, clock, filename })
  },
})

/** Two webhooks on `*` and two settled attempts (two events each): eight deliveries. */
async function seed(store: Store, clock: FakeClock): Promise<number[]> {
  const at = iso(clock.now())
  for (let k = 0; k < 2; k++) {
    await store.webhooks.create(
      newWebhook(
        {
          webhook_id: newId(),
          workspace_id: WS,
          url: `https://receiver.example/hook-${k}`,
          event_types: ['*'],
          secret: `whsec_${Buffer.alloc(32, k + 1).toString('base64')}`,
        },
        at,
      ),
    )
  }
  for (let i = 0; i < 2; i++) {
    const { attempt, history, events } = createAttempt(
      {
        action_attempt_id: newId(),
        action_type: 'LOCK_DOOR',
        device_id: DEVICE,
        workspace_id: WS,
        now: at,
        deadline_at: iso(clock.now() + 8000),
        idempotency_key: null,
        request_hash: null,
      },
      true,
    )
    await store.attempts.create(attempt, history, events)
    await store.attempts.transition(attempt.action_attempt_id, (a) =>
      applyAck(a, { command_id: a.action_attempt_id, status: 'success' }, at),
    )
  }
  return (await store.deliveries.listAfter(0, 100)).map((ref) => ref.seq)
}

function success(seq: number, clock: FakeClock): AttemptInput {
  return {
    delivery_seq: seq,
    attempted_at: iso(clock.now()),
    duration_ms: 2,
    response_code: 200,
    response_headers: { 'content-type': 'text/plain' },
    response_body: `ok ${seq}`,
    error_message: null,
    signature: `v1,sig-${seq}`,
    manual: false,
  }
}

describe('SQLite delivery batches', () => {
  it('gives each of the plans asked for in one turn its own delivery, webhook and event body', async ({
    db: { store, clock },
  }) => {
    const seqs = await seed(store, clock)
    expect(seqs).toHaveLength(8)
    // Each one alone first, then all of them (and one that does not exist) in the same turn.
    const alone = []
    for (const seq of seqs) alone.push(await store.deliveries.loadForAttempt(seq))
    const together = await Promise.all([...seqs, 999_999].map((seq) => store.deliveries.loadForAttempt(seq)))
    expect(together.slice(0, seqs.length)).toEqual(alone)
    expect(together.map((plan) => plan?.seq)).toEqual([...seqs, undefined])
    expect(new Set(alone.map((plan) => plan?.webhook.url)).size).toBe(2)
    expect(new Set(alone.map((plan) => plan?.body)).size).toBe(4)
  })

  it('records the attempts of one turn each with its own outcome; one that fails does not take the others along', async ({
    db: { store, clock },
  }) => {
    const seqs = await seed(store, clock)
    const failing = seqs[1] as number
    const outcomes = await Promise.allSettled(
      [...seqs, 999_999].map((seq) =>
        store.deliveries.recordAttempt(success(seq, clock), (ctx) => {
          if (seq === failing) throw new Error('decision failed')
          return attemptRecord({ kind: 'delivered' }, ctx)
        }),
      ),
    )
    expect(outcomes[1]).toEqual({ status: 'rejected', reason: new Error('decision failed') })
    expect(outcomes.at(-1)).toEqual({ status: 'fulfilled', value: undefined })
    const recorded = outcomes.filter((_, i) => i !== 1 && i < seqs.length)
    for (const outcome of recorded) {
      expect(outcome.status).toBe('fulfilled')
      if (outcome.status !== 'fulfilled') continue
      expect(outcome.value?.decision.delivery).toBe('delivered')
      expect(outcome.value?.attempt).toMatchObject({ attempt_number: 1, status: 'success' })
    }
    // What was committed: every delivery but the failing one is delivered, with its own attempt.
    for (const seq of seqs) {
      const plan = await store.deliveries.loadForAttempt(seq)
      const delivery = await store.deliveries.get(plan?.event_id as string, plan?.webhook_id as string)
      const attempts = await store.deliveries.attempts(plan?.event_id as string, plan?.webhook_id as string)
      if (seq === failing) {
        expect(delivery?.status).toBe('pending')
        expect(attempts).toEqual([])
      } else {
        expect(delivery?.status).toBe('delivered')
        expect(attempts.map((a) => [a.delivery_seq, a.signature, a.response_body])).toEqual([
          [seq, `v1,sig-${seq}`, `ok ${seq}`],
        ])
      }
    }
  })

  it("chains each attempt's evidence to the attempt before it, read from that attempt's row, not from a copy in the delivery's", async ({
    db: { store, clock, filename },
  }) => {
    const [seq, older] = (await seed(store, clock)) as [number, number]
    const raw = new Database(filename)
    try {
      const copy = (s: number) =>
        (
          raw.prepare('SELECT last_evidence_id FROM deliveries WHERE seq = ?').get(s) as {
            last_evidence_id: string | null
          }
        ).last_evidence_id
      const attempt = async (s: number, n: number) => {
        clock.advance(1000)
        const input = { ...success(s, clock), signature: `v1,sig-${s}-${n}`, manual: n > 1 }
        const recorded = await store.deliveries.recordAttempt(input, (ctx) => attemptRecord({ kind: 'delivered' }, ctx))
        return recorded?.attempt
      }
      const evidence = (previous: string, a: { attempt_id: string; signature: string; attempted_at: string }) =>
        createHash('sha256')
          .update(`${previous}\n${a.attempt_id}\n${a.signature}\n200\n${a.attempted_at}`)
          .digest('hex')

      // Three attempts of one delivery (the later two manual): each covers the one before; the row keeps no copy.
      let previous = ''
      for (let n = 1; n <= 3; n++) {
        const made = await attempt(seq, n)
        expect(made?.attempt_number).toBe(n)
        expect(made?.evidence_id).toBe(evidence(previous, made as NonNullable<typeof made>))
        expect(copy(seq)).toBeNull()
        previous = made?.evidence_id as string
      }
      const plan = await store.deliveries.loadForAttempt(seq)
      const rows = await store.deliveries.attempts(plan?.event_id as string, plan?.webhook_id as string)
      expect(rows.at(-1)?.evidence_id).toBe(previous)

      // A delivery attempted by an earlier version still carries the copy: the next attempt chains to it, then clears it.
      await attempt(older, 1)
      raw.prepare('UPDATE deliveries SET last_evidence_id = ? WHERE seq = ?').run('e'.repeat(64), older)
      const next = await attempt(older, 2)
      expect(next?.evidence_id).toBe(evidence('e'.repeat(64), next as NonNullable<typeof next>))
      expect(copy(older)).toBeNull()
    } finally {
      raw.close()
    }
  })
})
