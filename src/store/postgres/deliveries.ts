import type { DeliveryStore, RecordedAttempt } from '../../app/store.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../../domain/delivery.js'
import { iso } from '../../domain/clock.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../../domain/webhook-delivery.js'
import { evidenceId } from '../sqlite/deliveries.js'
import type { PgContext } from './context.js'
import type { Tx } from './database.js'
import type { PgWebhooks } from './webhooks.js'

interface RefRow {
  seq: number
  webhook_id: string
  status: string
  held: boolean
  next_attempt_at: string | null
}

interface PlanRow extends RefRow {
  event_id: string
  body: string
  url: string
  secret: string
  previous_secret: string | null
  previous_secret_expires_at: string | null
  enabled: boolean
}

interface DeliveryRow extends RefRow {
  event_id: string
  workspace_id: string
  event_type: string
  attempt_count: number
  retries_scheduled: number
  last_attempt_at: string | null
  last_evidence_id: string | null
  created_at: string
  updated_at: string
}

interface StateRow extends DeliveryRow {
  webhook_enabled: boolean
  webhook_deleted: boolean
  consecutive_failures: number
}

/** A delivery_attempts row as PostgreSQL returns it. */
export type AttemptRow = Omit<DeliveryAttempt, 'response_headers'> & { response_headers: string | null }

const SEQ_BLOCK = 256

const REF = 'seq, webhook_id, status, held, next_attempt_at'
const DELIVERY = `${REF}, event_id, workspace_id, event_type, attempt_count, retries_scheduled, last_attempt_at, last_evidence_id,
  created_at, updated_at`
export const ATTEMPT = `seq, attempt_id, delivery_seq, event_id, webhook_id, workspace_id, event_type, attempt_number, manual,
  status, attempted_at, duration_ms, response_code, response_headers, response_body, error_message, signature, will_retry,
  evidence_id`

function toRef(row: RefRow): DeliveryRef {
  return {
    seq: row.seq,
    webhook_id: row.webhook_id,
    status: row.status as DeliveryStatus,
    held: row.held,
    next_attempt_at: row.next_attempt_at,
  }
}

/** The same object, key for key, as the SQLite store's toAttempt. */
export function toAttempt(row: AttemptRow): DeliveryAttempt {
  return {
    seq: row.seq,
    attempt_id: row.attempt_id,
    delivery_seq: row.delivery_seq,
    event_id: row.event_id,
    webhook_id: row.webhook_id,
    workspace_id: row.workspace_id,
    event_type: row.event_type,
    attempt_number: row.attempt_number,
    manual: row.manual,
    status: row.status,
    attempted_at: row.attempted_at,
    duration_ms: row.duration_ms,
    response_code: row.response_code,
    response_headers:
      row.response_headers === null ? null : (JSON.parse(row.response_headers) as Record<string, string | string[]>),
    response_body: row.response_body,
    error_message: row.error_message,
    signature: row.signature,
    will_retry: row.will_retry,
    evidence_id: row.evidence_id,
  }
}

function contextOf(row: StateRow, manual: boolean): DeliveryContext {
  return {
    status: row.status as DeliveryStatus,
    held: row.held,
    nextAttemptAtMs: row.next_attempt_at === null ? null : Date.parse(row.next_attempt_at),
    retriesScheduled: row.retries_scheduled,
    webhookEnabled: row.webhook_enabled,
    webhookDeleted: row.webhook_deleted,
    consecutiveFailures: row.consecutive_failures,
    manual,
  }
}

/** The delivery outbox and its attempts. */
export class PgDeliveries implements DeliveryStore {
  private counter = 0
  private seqs: number[] = []

  constructor(
    private readonly ctx: PgContext,
    private readonly webhooks: PgWebhooks,
  ) {}

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
    const rows = await this.ctx.db.query<PlanRow>(
      `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id, e.body, w.url, w.secret,
         w.previous_secret, w.previous_secret_expires_at, w.enabled
       FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`,
      [seq],
    )
    const row = rows[0]
    if (!row) return undefined
    const { url, secret, previous_secret, previous_secret_expires_at, enabled, event_id, body } = row
    return {
      seq: row.seq,
      webhook_id: row.webhook_id,
      status: row.status as DeliveryStatus,
      held: row.held,
      next_attempt_at: row.next_attempt_at,
      event_id,
      body,
      webhook: { url, secret, previous_secret, previous_secret_expires_at, enabled },
    }
  }

  async recordAttempt(
    input: AttemptInput,
    decide: (ctx: DeliveryContext) => AttemptDecision,
  ): Promise<RecordedAttempt | undefined> {
    const recorded = await this.ctx.db.writes.run(async (tx) => {
      const rows = await tx.query<StateRow>(
        `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id, d.workspace_id, d.event_type,
           d.attempt_count, d.retries_scheduled, d.last_attempt_at, d.last_evidence_id, d.created_at, d.updated_at,
           w.enabled AS webhook_enabled, w.deleted_at IS NOT NULL AS webhook_deleted, w.consecutive_failures
         FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`,
        [input.delivery_seq],
      )
      const row = rows[0]
      if (!row) return undefined
      const decision = decide(contextOf(row, input.manual))
      const attempt = this.newAttempt(row, input, decision)
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
    const row = rows[0]
    if (!row) return undefined
    const { retries_scheduled: _r, last_evidence_id: _e, ...rest } = row
    return { ...rest, status: row.status as DeliveryStatus, held: row.held }
  }

  async attempts(eventId: string, webhookId: string): Promise<DeliveryAttempt[]> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT} FROM delivery_attempts WHERE delivery_seq =
         (SELECT seq FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?)
       ORDER BY attempt_number`,
      [eventId, webhookId],
    )
    return rows.map(toAttempt)
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

  private newAttempt(row: StateRow, input: AttemptInput, decision: AttemptDecision): DeliveryAttempt {
    const attemptId = this.attemptId(input.attempted_at)
    return {
      delivery_seq: input.delivery_seq,
      attempted_at: input.attempted_at,
      duration_ms: input.duration_ms,
      response_code: input.response_code,
      response_headers: input.response_headers,
      response_body: input.response_body,
      error_message: input.error_message,
      signature: input.signature,
      manual: input.manual,
      seq: 0,
      attempt_id: attemptId,
      event_id: row.event_id,
      webhook_id: row.webhook_id,
      workspace_id: row.workspace_id,
      event_type: row.event_type,
      attempt_number: row.attempt_count + 1,
      status: decision.status,
      will_retry: decision.willRetry,
      evidence_id: evidenceId(
        row.last_evidence_id,
        attemptId,
        input.signature,
        input.response_code,
        input.attempted_at,
      ),
    }
  }

  /** Attempt ids as the SQLite store makes them: `dlv_` + time + counter + randomness, sorting by insertion. */
  private attemptId(at: string): string {
    this.counter = (this.counter + 1) % 0x1000000
    const time = Date.parse(at).toString(16).padStart(12, '0')
    return `dlv_${time}${this.counter.toString(16).padStart(6, '0')}${this.ctx.newId().replaceAll('-', '').slice(0, 14)}`
  }
}
