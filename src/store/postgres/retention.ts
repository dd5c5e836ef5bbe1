import type { PruneCutoffs, PruneResult, RetentionStore } from '../../app/store.js'
import type { PgContext } from './context.js'
import type { Tx } from './database.js'

interface Row {
  seq: string
  created_at: string
}

/**
 * One walk over a table in seq order (seq grows with inserts, so this is time order), a batch at a time, as on
 * SQLite (src/store/sqlite/retention.ts): a pass ends at the first row not yet past the cutoff, or at the end of the
 * table, and the next pass starts over, so a row kept once (still owed) is looked at again later. PostgreSQL never
 * hands out a deleted seq again, so unlike SQLite the newest row may go too.
 */
class Walk {
  private cursor = 0

  /** The rows of this batch that are past the cutoff, and whether the pass stopped at the limit. */
  async step<R extends Row>(
    rows: (afterSeq: number, limit: number) => Promise<R[]>,
    cutoff: string,
    limit: number,
  ): Promise<{ due: R[]; more: boolean }> {
    const batch = await rows(this.cursor, limit)
    const due: R[] = []
    for (const row of batch) {
      if (row.created_at >= cutoff) {
        this.cursor = 0
        return { due, more: false }
      }
      due.push(row)
      this.cursor = Number(row.seq)
    }
    if (batch.length < limit) {
      this.cursor = 0
      return { due, more: false }
    }
    return { due, more: true }
  }
}

/**
 * Retention on PostgreSQL (docs/operations.md#retention): one bounded batch per call, in one write transaction.
 * A pending attempt, a delivery still owed (pending covers held and in flight) and the event it needs are never
 * deleted; idempotency keys are freed once their 24 hours are over.
 */
export class PgRetention implements RetentionStore {
  private readonly attempts = new Walk()
  private readonly events = new Walk()

  constructor(private readonly ctx: PgContext) {}

  prune(cutoffs: PruneCutoffs, limit: number): Promise<PruneResult> {
    return this.ctx.db.writes.run(async (tx) => {
      const attempts = await this.pruneAttempts(tx, cutoffs.before, limit)
      const events = await this.pruneEvents(tx, cutoffs.before, limit)
      // Keyed attempts are few (a day's worth once retention runs): the partial index holds just them.
      const idempotencyKeys = await tx.exec(
        `UPDATE action_attempts SET idempotency_key = NULL, version = version + 1 WHERE seq IN (SELECT seq FROM action_attempts
           WHERE idempotency_key IS NOT NULL AND created_at < ? ORDER BY seq LIMIT ?)`,
        [cutoffs.keysBefore, limit],
      )
      return {
        attempts: attempts.removed,
        deliveries: events.deliveries,
        events: events.removed,
        idempotencyKeys,
        more: attempts.more || events.more || idempotencyKeys === limit,
      }
    })
  }

  private async pruneAttempts(tx: Tx, cutoff: string, limit: number): Promise<{ removed: number; more: boolean }> {
    const { due, more } = await this.attempts.step(
      (after, n) =>
        tx.query<Row & { status: string; action_attempt_id: string }>(
          'SELECT seq, created_at, status, action_attempt_id FROM action_attempts WHERE seq > ? ORDER BY seq LIMIT ?',
          [after, n],
        ),
      cutoff,
      limit,
    )
    const settled = due.filter((row) => row.status !== 'pending').map((row) => row.action_attempt_id)
    if (settled.length === 0) return { removed: 0, more }
    await tx.exec('DELETE FROM attempt_history WHERE action_attempt_id = ANY(?::text[])', [settled])
    const removed = await tx.exec(
      "DELETE FROM action_attempts WHERE action_attempt_id = ANY(?::text[]) AND status <> 'pending'",
      [settled],
    )
    return { removed, more }
  }

  /** An event goes with its deliveries and their attempts (one transaction wrote them) once none is still owed. */
  private async pruneEvents(
    tx: Tx,
    cutoff: string,
    limit: number,
  ): Promise<{ removed: number; deliveries: number; more: boolean }> {
    const { due, more } = await this.events.step(
      (after, n) => tx.query<Row>('SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?', [after, n]),
      cutoff,
      limit,
    )
    if (due.length === 0) return { removed: 0, deliveries: 0, more }
    const deliveries = await tx.query<{ seq: string; event_seq: string; status: string }>(
      'SELECT seq, event_seq, status FROM deliveries WHERE event_seq = ANY(?::bigint[])',
      [due.map((row) => row.seq)],
    )
    const owed = new Set(deliveries.filter((d) => d.status === 'pending').map((d) => String(d.event_seq)))
    const events = due.map((row) => String(row.seq)).filter((seq) => !owed.has(seq))
    const gone = deliveries.filter((d) => !owed.has(String(d.event_seq))).map((d) => String(d.seq))
    if (gone.length > 0) {
      await tx.exec('DELETE FROM delivery_attempts WHERE delivery_seq = ANY(?::bigint[])', [gone])
      await tx.exec('DELETE FROM deliveries WHERE seq = ANY(?::bigint[])', [gone])
    }
    const removed = events.length > 0 ? await tx.exec('DELETE FROM events WHERE seq = ANY(?::bigint[])', [events]) : 0
    return { removed, deliveries: gone.length, more }
  }
}
