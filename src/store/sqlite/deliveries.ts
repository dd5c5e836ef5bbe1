import { createHash } from 'node:crypto'
import type { DeliveryStore, RecordedAttempt } from '../../app/store.js'
import { iso } from '../../domain/clock.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../../domain/delivery.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../../domain/webhook-delivery.js'
import type { StoreContext } from './context.js'
import type { SqliteWebhooks } from './webhooks.js'

interface RefRow {
  seq: number
  webhook_id: string
  status: string
  held: number
  next_attempt_at: string | null
}

interface PlanRow extends RefRow {
  event_id: string
  body: string
  url: string
  secret: string
  previous_secret: string | null
  previous_secret_expires_at: string | null
  enabled: number
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
  webhook_enabled: number
  webhook_deleted: number
  consecutive_failures: number
}

/** A delivery_attempts row as SQLite returns it. */
export type AttemptRow = Omit<DeliveryAttempt, 'manual' | 'will_retry' | 'response_headers'> & {
  manual: number
  will_retry: number
  response_headers: string | null
}

const REF = 'seq, webhook_id, status, held, next_attempt_at'
const DELIVERY = `${REF}, event_id, workspace_id, event_type, attempt_count, retries_scheduled, last_attempt_at, last_evidence_id,
  created_at, updated_at`
const ATTEMPT = `seq, attempt_id, delivery_seq, event_id, webhook_id, workspace_id, event_type, attempt_number, manual, status,
  attempted_at, duration_ms, response_code, response_headers, response_body, error_message, signature, will_retry, evidence_id`

function toRef(row: RefRow): DeliveryRef {
  return {
    seq: row.seq,
    webhook_id: row.webhook_id,
    status: row.status as DeliveryStatus,
    held: row.held === 1,
    next_attempt_at: row.next_attempt_at,
  }
}

export function toAttempt(row: AttemptRow): DeliveryAttempt {
  return {
    ...row,
    manual: row.manual === 1,
    will_retry: row.will_retry === 1,
    response_headers:
      row.response_headers === null ? null : (JSON.parse(row.response_headers) as Record<string, string | string[]>),
  }
}

/** The evidence chain of docs/deliveries.md: each attempt's hash covers the previous one of the same delivery. */
export function evidenceId(
  previous: string | null,
  attemptId: string,
  signature: string,
  code: number | null,
  attemptedAt: string,
): string {
  return createHash('sha256')
    .update(`${previous ?? ''}\n${attemptId}\n${signature}\n${code ?? ''}\n${attemptedAt}`)
    .digest('hex')
}

function contextOf(row: StateRow, manual: boolean): DeliveryContext {
  return {
    status: row.status as DeliveryStatus,
    held: row.held === 1,
    nextAttemptAtMs: row.next_attempt_at === null ? null : Date.parse(row.next_attempt_at),
    retriesScheduled: row.retries_scheduled,
    webhookEnabled: row.webhook_enabled === 1,
    webhookDeleted: row.webhook_deleted === 1,
    consecutiveFailures: row.consecutive_failures,
    manual,
  }
}

/** The delivery outbox and its attempts. */
export class SqliteDeliveries implements DeliveryStore {
  private readonly stmts
  private counter = 0

  constructor(
    private readonly ctx: StoreContext,
    private readonly webhooks: SqliteWebhooks,
  ) {
    const db = ctx.db
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held, next_attempt_at,
           created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
      ),
      maxSeq: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM deliveries'),
      after: db.prepare<[number, number], RefRow>(`SELECT ${REF} FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?`),
      // Deliveries are inserted with their event, so seq order is event order (and deliveries_pending serves it).
      pending: db.prepare<[string, number, number], RefRow>(
        `SELECT ${REF} FROM deliveries WHERE webhook_id = ? AND status = 'pending' AND held = 0 AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      // A disabled webhook's pending deliveries are all held; an enabled one's none.
      active: db.prepare<[], { webhook_id: string }>(
        'SELECT webhook_id FROM webhooks WHERE deleted_at IS NULL AND enabled = 1 ORDER BY seq',
      ),
      plan: db.prepare<[number], PlanRow>(
        `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id, e.body, w.url, w.secret,
           w.previous_secret, w.previous_secret_expires_at, w.enabled
         FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`,
      ),
      state: db.prepare<[number], StateRow>(
        `SELECT d.seq, d.webhook_id, d.status, d.held, d.next_attempt_at, d.event_id, d.workspace_id, d.event_type,
           d.attempt_count, d.retries_scheduled, d.last_attempt_at, d.last_evidence_id, d.created_at, d.updated_at,
           w.enabled AS webhook_enabled, w.deleted_at IS NOT NULL AS webhook_deleted, w.consecutive_failures
         FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id WHERE d.seq = ?`,
      ),
      byKey: db.prepare<[string, string], DeliveryRow>(
        `SELECT ${DELIVERY} FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?`,
      ),
      insertAttempt: db.prepare(
        `INSERT INTO delivery_attempts (attempt_id, delivery_seq, workspace_id, event_id, webhook_id, event_type, attempt_number,
           manual, status, attempted_at, duration_ms, response_code, response_headers, response_body, error_message, signature,
           will_retry, evidence_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateDelivery: db.prepare(
        `UPDATE deliveries SET status = ?, held = ?, next_attempt_at = ?, attempt_count = ?, retries_scheduled = ?,
           last_attempt_at = ?, last_evidence_id = ?, updated_at = ? WHERE seq = ?`,
      ),
      // Both through deliveries_pending: one index range per disabled webhook, one seek per enabled one.
      held: db.prepare<[], { n: number }>(
        `SELECT count(*) AS n FROM deliveries WHERE status = 'pending' AND webhook_id IN
           (SELECT webhook_id FROM webhooks WHERE enabled = 0 AND deleted_at IS NULL)`,
      ),
      oldestOwed: db.prepare<[], { created_at: string | null }>(
        `SELECT created_at FROM deliveries WHERE seq = (SELECT min((SELECT seq FROM deliveries d
           WHERE d.webhook_id = w.webhook_id AND d.status = 'pending' ORDER BY d.seq LIMIT 1))
         FROM webhooks w WHERE w.enabled = 1 AND w.deleted_at IS NULL)`,
      ),
      attempts: db.prepare<[string, string], AttemptRow>(
        `SELECT ${ATTEMPT} FROM delivery_attempts WHERE delivery_seq =
           (SELECT seq FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?)
         ORDER BY attempt_number`,
      ),
    }
  }

  /** One delivery per matching webhook, in the event's transaction (outbox, docs/design.md); held if disabled. */
  insertForEvent(event: LatchkeyEvent, eventSeq: number): void {
    for (const webhook of this.webhooks.matching(event.workspace_id, event.event_type)) {
      this.stmts.insert.run(
        eventSeq,
        event.event_id,
        webhook.webhook_id,
        event.workspace_id,
        event.event_type,
        webhook.enabled ? 0 : 1,
        webhook.enabled ? event.created_at : null,
        event.created_at,
        event.created_at,
      )
      this.ctx.deliveryQueued()
    }
  }

  async owedSummary(): Promise<{ held: number; oldestOwedAt: string | null }> {
    return {
      held: this.stmts.held.get()?.n ?? 0,
      oldestOwedAt: this.stmts.oldestOwed.get()?.created_at ?? null,
    }
  }

  async maxSeq(): Promise<number> {
    return this.stmts.maxSeq.get()?.seq ?? 0
  }

  async listAfter(afterSeq: number, limit: number): Promise<DeliveryRef[]> {
    return this.stmts.after.all(afterSeq, limit).map(toRef)
  }

  async activeWebhooks(): Promise<string[]> {
    return this.stmts.active.all().map((row) => row.webhook_id)
  }

  async listPending(webhookId: string, afterSeq: number, limit: number): Promise<DeliveryRef[]> {
    return this.stmts.pending.all(webhookId, afterSeq, limit).map(toRef)
  }

  async loadForAttempt(seq: number): Promise<DeliveryPlan | undefined> {
    const row = this.stmts.plan.get(seq)
    if (!row) return undefined
    const { url, secret, previous_secret, previous_secret_expires_at, enabled, event_id, body } = row
    return {
      seq: row.seq,
      webhook_id: row.webhook_id,
      status: row.status as DeliveryStatus,
      held: row.held === 1,
      next_attempt_at: row.next_attempt_at,
      event_id,
      body,
      webhook: { url, secret, previous_secret, previous_secret_expires_at, enabled: enabled === 1 },
    }
  }

  async recordAttempt(
    input: AttemptInput,
    decide: (ctx: DeliveryContext) => AttemptDecision,
  ): Promise<RecordedAttempt | undefined> {
    const recorded = await this.ctx.writes.run(() => {
      const row = this.stmts.state.get(input.delivery_seq)
      if (!row) return undefined
      const decision = decide(contextOf(row, input.manual))
      const attempt = this.insertAttempt(row, input, decision)
      const at = this.ctx.now()
      const next = decision.nextAttemptAtMs === null ? null : iso(decision.nextAttemptAtMs)
      this.stmts.updateDelivery.run(
        decision.delivery,
        decision.held ? 1 : 0,
        next,
        attempt.attempt_number,
        decision.retriesScheduled,
        attempt.attempted_at,
        attempt.evidence_id,
        at,
        row.seq,
      )
      const failures = { before: row.consecutive_failures, after: decision.consecutiveFailures }
      this.webhooks.applyAttemptOutcome(row.workspace_id, row.webhook_id, failures, decision.disable, at)
      return { attempt, decision, workspaceId: row.workspace_id }
    })
    if (!recorded) return undefined
    if (recorded.decision.disable) this.webhooks.forget(recorded.workspaceId)
    return { attempt: recorded.attempt, decision: recorded.decision }
  }

  async get(eventId: string, webhookId: string): Promise<DeliveryRecord | undefined> {
    const row = this.stmts.byKey.get(eventId, webhookId)
    if (!row) return undefined
    const { retries_scheduled: _r, last_evidence_id: _e, ...rest } = row
    return { ...rest, status: row.status as DeliveryStatus, held: row.held === 1 }
  }

  async attempts(eventId: string, webhookId: string): Promise<DeliveryAttempt[]> {
    return this.stmts.attempts.all(eventId, webhookId).map(toAttempt)
  }

  private insertAttempt(row: StateRow, input: AttemptInput, decision: AttemptDecision): DeliveryAttempt {
    const attemptId = this.attemptId(input.attempted_at)
    const attempt: DeliveryAttempt = {
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
    const info = this.stmts.insertAttempt.run(
      attempt.attempt_id,
      row.seq,
      attempt.workspace_id,
      attempt.event_id,
      attempt.webhook_id,
      attempt.event_type,
      attempt.attempt_number,
      input.manual ? 1 : 0,
      attempt.status,
      input.attempted_at,
      Math.round(input.duration_ms),
      input.response_code,
      input.response_headers === null ? null : JSON.stringify(input.response_headers),
      input.response_body,
      input.error_message,
      input.signature,
      decision.willRetry ? 1 : 0,
      attempt.evidence_id,
    )
    attempt.seq = Number(info.lastInsertRowid)
    return attempt
  }

  /**
   * Attempt ids, `dlv_` + the attempt time + a counter + randomness (the v1 dialect calls an attempt a delivery). Made
   * at insert, they sort by insertion, so their unique index grows at its end: random keys halve insert throughput.
   */
  private attemptId(at: string): string {
    this.counter = (this.counter + 1) % 0x1000000
    const time = Date.parse(at).toString(16).padStart(12, '0')
    return `dlv_${time}${this.counter.toString(16).padStart(6, '0')}${this.ctx.newId().replaceAll('-', '').slice(0, 14)}`
  }
}
