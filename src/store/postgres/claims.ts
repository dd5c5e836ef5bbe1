import type { DeliveryClaims } from '../../app/store.js'
import type { DeliveryRef } from '../../domain/delivery.js'
import { DELIVERY_REF_COLUMNS as REF, deliveryRefFromRow as toRef, type DeliveryRefRow as RefRow } from '../rows.js'
import type { PgDb } from './database.js'
import { OUTBOX_CHANNEL, type PgListener } from './notify.js'

/** Owed, not held, due by `now` (the second parameter): the deliveries an automatic attempt may take. */
const OWED = `status = 'pending' AND NOT held AND next_attempt_at <= ?`

/**
 * Delivery leases (docs/scale-out.md#deliveries). Each claim is one autocommitted statement on the pool, outside
 * the group-commit writer: it orders nothing in the outbox, and it must not wait for a batch of other writes.
 */
export class PgDeliveryClaims implements DeliveryClaims {
  constructor(
    private readonly db: PgDb,
    private readonly listener: PgListener,
  ) {}

  async claim(seqs: number[], owner: string, now: string, until: string): Promise<number[]> {
    if (seqs.length === 0) return []
    const rows = await this.db.query<{ seq: number }>(
      `UPDATE deliveries SET lease_owner = ?, lease_until = ?
       WHERE seq = ANY(?::bigint[]) AND ${OWED} AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)
       RETURNING seq`,
      [owner, until, seqs, now, now, owner],
    )
    return rows.map((row) => row.seq)
  }

  async claimDue(owner: string, now: string, until: string, limit: number): Promise<DeliveryRef[]> {
    if (limit <= 0) return []
    const rows = await this.db.query<RefRow>(
      `UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE seq IN (
         SELECT seq FROM deliveries WHERE ${OWED} AND (lease_until IS NULL OR lease_until < ?)
         ORDER BY next_attempt_at, seq LIMIT ? FOR UPDATE SKIP LOCKED)
       RETURNING ${REF}`,
      [owner, until, now, now, limit],
    )
    return rows.map(toRef).sort((a, b) => a.seq - b.seq)
  }

  async release(seq: number, owner: string): Promise<void> {
    await this.db.exec(
      'UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE seq = ? AND lease_owner = ?',
      [seq, owner],
    )
  }

  onQueued(listener: () => void): void {
    this.listener.listen(OUTBOX_CHANNEL, () => listener())
  }
}
