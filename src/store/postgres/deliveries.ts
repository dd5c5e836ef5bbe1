import type { DeliveryStore, RecordedAttempt } from '../../app/store.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../../domain/delivery.js'
import { iso } from '../../domain/clock.js'
import type { AttemptDecision, DeliveryContext } from '../../domain/webhook-delivery.js'
import {
  DELIVERY_ATTEMPT_COLUMNS as ATTEMPT,
  DELIVERY_COLUMNS as DELIVERY,
  DELIVERY_REF_COLUMNS as REF,
  deliveryAttemptFromRow,
  deliveryAttemptIds,
  deliveryContext as contextOf,
  deliveryFromRow,
  deliveryPlanFromRow,
  deliveryRefFromRow as toRef,
  newDeliveryAttempt,
  SELECT_DELIVERY_PLAN,
  SELECT_DELIVERY_STATE,
  type DeliveryAttemptRow as AttemptRow,
  type DeliveryPlanRow as PlanRow,
  type DeliveryRefRow as RefRow,
  type DeliveryRow,
  type DeliveryStateRow as StateRow,
} from '../rows.js'
import type { PgContext } from './context.js'
import type { Tx } from './database.js'
import type { PgWebhooks } from './webhooks.js'

const SEQ_BLOCK = 256

/** The delivery outbox and its attempts. */
export class PgDeliveries implements DeliveryStore {
  private seqs: number[] = []
  private readonly attemptId

  constructor(
    private readonly ctx: PgContext,
    private readonly webhooks: PgWebhooks,
  ) {
    this.attemptId = deliveryAttemptIds(ctx.newId)
  }

  async owedSummary(): Promise<{ held: number; oldestOwedAt: string | null }> {
    const [held] = await this.ctx.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM deliveries WHERE status = 'pending' AND webhook_id IN
         (SELECT webhook_id FROM webhooks WHERE NOT enabled AND deleted_at IS NULL)`,
    )
    // The oldest owed delivery of each enabled webhook is one index seek; the oldest of those is the answer.
    const [oldest] = await this.ctx.db.query<{ created_at: string | null }>(
      `SELECT created_at FROM deliveries WHERE seq = (SELECT min((SELECT seq FROM deliveries d
         WHERE d.webhook_id = w.webhook_id AND d.status = 'pending' ORDER BY d.seq LIMIT 1))
       FROM webhooks w WHERE w.enabled AND w.deleted_at IS NULL)`,
    )
    return { held: Number(held?.n ?? 0), oldestOwedAt: oldest?.created_at ?? null }
  }

  async maxSeq(): Promise<number> {
    return (await this.ctx.db.query<{ seq: number | null }>('SELECT max(seq) AS seq FROM deliveries'))[0]?.seq ?? 0
  }

  async listAfter(afterSeq: number, limit: number): Promise<DeliveryRef[]> {
    const rows = await this.ctx.db.query<RefRow>(`SELECT ${REF} FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?`, [
      afterSeq,
      limit,
    ])
    return rows.map(toRef)
  }

  async activeWebhooks(): Promise<string[]> {
    const rows = await this.ctx.db.query<{ webhook_id: string }>(
      'SELECT webhook_id FROM webhooks WHERE deleted_at IS NULL AND enabled ORDER BY seq',
    )
    return rows.map((row) => row.webhook_id)
  }

  async listPending(webhookId: string, afterSeq: number, limit: number): Promise<DeliveryRef[]> {
    const rows = await this.ctx.db.query<RefRow>(
      `SELECT ${REF} FROM deliveries WHERE webhook_id = ? AND status = 'pending' AND NOT held AND seq > ? ORDER BY seq LIMIT ?`,
      [webhookId, afterSeq, limit],
    )
    return rows.map(toRef)
  }

  async loadForAttempt(seq: number): Promise<DeliveryPlan | undefined> {
    const rows = await this.ctx.db.query<PlanRow>(SELECT_DELIVERY_PLAN, [seq])
    return rows[0] && deliveryPlanFromRow(rows[0])
  }

  async recordAttempt(
    input: AttemptInput,
    decide: (ctx: DeliveryContext) => AttemptDecision,
  ): Promise<RecordedAttempt | undefined> {
    const recorded = await this.ctx.db.writes.run(async (tx) => {
      // Locked, the delivery and its webhook: instances recording attempts of one webhook at once count its
      // consecutive failures one after another, never from the same stale count (docs/scale-out.md#concurrency).
      const rows = await tx.query<StateRow>(`${SELECT_DELIVERY_STATE} FOR UPDATE`, [input.delivery_seq])
      const row = rows[0]
      if (!row) return undefined
      const decision = decide(contextOf(row, input.manual))
      const attempt = newDeliveryAttempt(row, input, decision, this.attemptId(input.attempted_at))
      const at = this.ctx.now()
      const next = decision.nextAttemptAtMs === null ? null : iso(decision.nextAttemptAtMs)
      attempt.seq = await this.nextSeq(tx)
      // The attempt and the delivery's new state in one statement, sent with the next statement read: its seq was
      // taken from the sequence beforehand, so nothing waits for it.
      tx.write(
        `WITH a AS (
           INSERT INTO delivery_attempts (seq, attempt_id, delivery_seq, workspace_id, event_id, webhook_id, event_type,
             attempt_number, manual, status, attempted_at, duration_ms, response_code, response_headers, response_body,
             error_message, signature, will_retry, evidence_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))
         UPDATE deliveries SET status = ?, held = ?, next_attempt_at = ?, attempt_count = ?, retries_scheduled = ?,
           last_attempt_at = ?, last_evidence_id = ?, updated_at = ? WHERE seq = ?`,
        [
          attempt.seq,
          attempt.attempt_id,
          row.seq,
          attempt.workspace_id,
          attempt.event_id,
          attempt.webhook_id,
          attempt.event_type,
          attempt.attempt_number,
          input.manual,
          attempt.status,
          input.attempted_at,
          Math.round(input.duration_ms),
          input.response_code,
          input.response_headers === null ? null : JSON.stringify(input.response_headers),
          input.response_body,
          input.error_message,
          input.signature,
          decision.willRetry,
          attempt.evidence_id,
          decision.delivery,
          decision.held,
          next,
          attempt.attempt_number,
          decision.retriesScheduled,
          attempt.attempted_at,
          attempt.evidence_id,
          at,
          row.seq,
        ],
      )
      const failures = { before: row.consecutive_failures, after: decision.consecutiveFailures }
      await this.webhooks.applyAttemptOutcome(tx, row.workspace_id, row.webhook_id, failures, decision.disable, at)
      return { attempt, decision, workspaceId: row.workspace_id }
    })
    if (!recorded) return undefined
    if (recorded.decision.disable) this.webhooks.forget(recorded.workspaceId)
    return { attempt: recorded.attempt, decision: recorded.decision }
  }

  async get(eventId: string, webhookId: string): Promise<DeliveryRecord | undefined> {
    const rows = await this.ctx.db.query<DeliveryRow>(
      `SELECT ${DELIVERY} FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?`,
      [eventId, webhookId],
    )
    return rows[0] && deliveryFromRow(rows[0])
  }

  async attempts(eventId: string, webhookId: string): Promise<DeliveryAttempt[]> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT} FROM delivery_attempts WHERE delivery_seq =
         (SELECT seq FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?)
       ORDER BY attempt_number`,
      [eventId, webhookId],
    )
    return rows.map(deliveryAttemptFromRow)
  }

  /**
   * The next delivery_attempts seq. Taken from the table's sequence a block at a time by the one writer, so seqs
   * still grow in commit order; a rolled-back batch leaves a gap, as a rolled-back insert would.
   */
  private async nextSeq(tx: Tx): Promise<number> {
    if (this.seqs.length === 0) {
      const rows = await tx.query<{ seq: number }>(
        `SELECT nextval(pg_get_serial_sequence('delivery_attempts', 'seq')) AS seq FROM generate_series(1, ${SEQ_BLOCK})`,
      )
      this.seqs = rows.map((row) => row.seq).sort((a, b) => a - b)
    }
    return this.seqs.shift() as number
  }
}
