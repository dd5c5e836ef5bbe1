import type { PruneCutoffs, PruneResult, RetentionStore } from '../../app/store.js'
import type { StoreContext } from './context.js'

interface Row {
  seq: number
  created_at: string
}

/**
 * One walk over a table in seq order (time order: seq grows with inserts), a batch at a time. `cursor` is the last
 * seq examined in the current pass; a pass ends at the first row not past the cutoff, or at the end of the table,
 * and the next pass starts over from the beginning, so a row kept once (still owed) is looked at again later.
 *
 * The newest row of a table is never deleted: SQLite gives a new row max(seq) + 1, so deleting the newest rows
 * would hand their seqs out again, and seqs are the outbox tail's position and every list's cursor.
 */
class Walk<R extends Row> {
  private cursor = 0

  constructor(
    private readonly next: (afterSeq: number, limit: number) => R[],
    private readonly newest: () => number,
    /** Deletes the row if it may go; returns whether it did. */
    private readonly remove: (row: R) => boolean,
    /** Start every pass from the beginning (rows may be kept); false: carry on from the last row examined. */
    private readonly restart = true,
  ) {}

  /** Examines up to `limit` rows; returns how many were removed and whether the pass stopped at the limit. */
  step(cutoff: string, limit: number): { removed: number; more: boolean } {
    const rows = this.next(this.cursor, limit)
    const newest = rows.length > 0 ? this.newest() : 0
    let removed = 0
    for (const row of rows) {
      if (row.created_at >= cutoff || row.seq >= newest) {
        if (this.restart) this.cursor = 0
        return { removed, more: false }
      }
      if (this.remove(row)) removed++
      this.cursor = row.seq
    }
    if (rows.length < limit) {
      if (this.restart) this.cursor = 0
      return { removed, more: false }
    }
    return { removed, more: true }
  }
}

type AttemptRow = Row & { status: string }
type KeyedRow = Row & { idempotency_key: string | null }

/**
 * Retention on SQLite. Every batch is one job of the write queue, so it commits with the requests' writes of the
 * same turn and holds the database for one bounded batch only. Deleted pages go to SQLite's freelist and are
 * reused by later inserts, so the file stops growing once retention keeps pace with new rows.
 */
export class SqliteRetention implements RetentionStore {
  private readonly attempts: Walk<AttemptRow>
  private readonly events: Walk<Row>
  private readonly keys: Walk<KeyedRow>
  /** Deliveries deleted with their events in the current batch. */
  private deletedDeliveries = 0

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.db
    const stmts = {
      attempts: db.prepare<[number, number], AttemptRow>(
        'SELECT seq, created_at, status FROM action_attempts WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      deleteAttempt: db.prepare("DELETE FROM action_attempts WHERE seq = ? AND status != 'pending'"),
      keyed: db.prepare<[number, number], KeyedRow>(
        'SELECT seq, created_at, idempotency_key FROM action_attempts WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      // The partial index holds only keyed attempts (a day's worth once retention runs): a scan of it, not of the table.
      firstKeyed: db.prepare<[], { seq: number | null }>(
        `SELECT min(seq) AS seq FROM action_attempts INDEXED BY attempts_by_idempotency_key
         WHERE idempotency_key IS NOT NULL`,
      ),
      freeKey: db.prepare('UPDATE action_attempts SET idempotency_key = NULL WHERE seq = ?'),
      newestAttempt: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM action_attempts'),
      newestEvent: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM events'),
      newestDelivery: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM deliveries'),
      events: db.prepare<[number, number], Row>(
        'SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      deliveriesOf: db.prepare<[number], { seq: number; status: string }>(
        'SELECT seq, status FROM deliveries WHERE event_seq = ?',
      ),
      deleteDeliveryAttempts: db.prepare('DELETE FROM delivery_attempts WHERE delivery_seq = ?'),
      deleteDelivery: db.prepare('DELETE FROM deliveries WHERE seq = ?'),
      deleteEvent: db.prepare('DELETE FROM events WHERE seq = ?'),
    }
    // A settled attempt goes with its history (a column of its row); a pending one stays, however old.
    this.attempts = new Walk(
      (after, limit) => stmts.attempts.all(after, limit),
      () => stmts.newestAttempt.get()?.seq ?? 0,
      (row) => row.status !== 'pending' && stmts.deleteAttempt.run(row.seq).changes > 0,
    )
    // An event and its deliveries (written in one transaction, with one created_at) go together, with the
    // deliveries' attempts, once none of them is still owed: pending covers held and in-flight deliveries, which
    // need the event's body.
    this.events = new Walk(
      (after, limit) => stmts.events.all(after, limit),
      () => stmts.newestEvent.get()?.seq ?? 0,
      (row) => {
        const deliveries = stmts.deliveriesOf.all(row.seq)
        if (deliveries.some((delivery) => delivery.status === 'pending')) return false
        const newestDelivery = stmts.newestDelivery.get()?.seq ?? 0
        if (deliveries.some((delivery) => delivery.seq >= newestDelivery)) return false
        for (const delivery of deliveries) {
          stmts.deleteDeliveryAttempts.run(delivery.seq)
          stmts.deleteDelivery.run(delivery.seq)
        }
        this.deletedDeliveries += deliveries.length
        return stmts.deleteEvent.run(row.seq).changes > 0
      },
    )
    // Keys expire in seq order and nothing is kept behind: one endless pass, which starts at the oldest keyed attempt.
    this.keys = new Walk(
      (after, limit) => stmts.keyed.all(after === 0 ? (stmts.firstKeyed.get()?.seq ?? 1) - 1 : after, limit),
      // Freeing a key deletes nothing: the newest attempt's key can go too.
      () => Number.MAX_SAFE_INTEGER,
      (row) => row.idempotency_key !== null && stmts.freeKey.run(row.seq).changes > 0,
      false,
    )
  }

  prune(cutoffs: PruneCutoffs, limit: number): Promise<PruneResult> {
    return this.ctx.writes.run(() => {
      this.deletedDeliveries = 0
      const attempts = this.attempts.step(cutoffs.before, limit)
      const events = this.events.step(cutoffs.before, limit)
      const keys = this.keys.step(cutoffs.keysBefore, limit)
      return {
        attempts: attempts.removed,
        deliveries: this.deletedDeliveries,
        events: events.removed,
        idempotencyKeys: keys.removed,
        more: attempts.more || events.more || keys.more,
      }
    })
  }
}
