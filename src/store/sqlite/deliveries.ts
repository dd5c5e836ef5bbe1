import type { DeliveryStore, RecordedAttempt } from '../../app/store.js'
import { batchPerTask } from '../../domain/batch.js'
import { iso } from '../../domain/clock.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../../domain/delivery.js'
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
  type DeliveryRow,
  type DeliveryPlanRow as PlanRow,
  type DeliveryRefRow as RefRow,
  type DeliveryStateRow as StateRow,
} from '../rows.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import type { AttemptDecision, DeliveryContext } from '../../domain/webhook-delivery.js'
import type { StoreContext } from './context.js'
import type { SqliteWebhooks } from './webhooks.js'

/** The plans of several deliveries: SELECT_DELIVERY_PLAN for a JSON array of seqs. */
const SELECT_DELIVERY_PLANS = SELECT_DELIVERY_PLAN.replace(
  /WHERE d\.seq = \?$/,
  'WHERE d.seq IN (SELECT value FROM json_each(?))',
)
if (SELECT_DELIVERY_PLANS === SELECT_DELIVERY_PLAN) throw new Error('SELECT_DELIVERY_PLAN no longer ends as expected')
const PLANS_PER_QUERY = 500

interface Recording {
  input: AttemptInput
  decide: (ctx: DeliveryContext) => AttemptDecision
  resolve: (recorded: RecordedAttempt | undefined) => void
  reject: (error: unknown) => void
}

interface Recorded {
  attempt: DeliveryAttempt
  decision: AttemptDecision
  workspaceId: string
}

/** The delivery outbox and its attempts. */
export class SqliteDeliveries implements DeliveryStore {
  private readonly stmts
  private readonly attemptId
  /**
   * The plans asked for in one synchronous run (the dispatcher starting a page of attempts) are read together, at
   * the end of it, with one query instead of one each.
   */
  readonly loadForAttempt = batchPerTask((seqs: number[]) => this.loadPlans(seqs))
  /** Attempts waiting for the next write job (see recordAttempt). */
  private recordings: Recording[] = []

  constructor(
    private readonly ctx: StoreContext,
    private readonly webhooks: SqliteWebhooks,
  ) {
    // The v1 dialect calls an attempt a delivery; ids that sort by insertion keep their unique index growing at its end.
    this.attemptId = deliveryAttemptIds(ctx.newId)
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
      plan: db.prepare<[number], PlanRow>(SELECT_DELIVERY_PLAN),
      plans: db.prepare<[string], PlanRow>(SELECT_DELIVERY_PLANS),
      state: db.prepare<[number], StateRow>(SELECT_DELIVERY_STATE),
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

  private loadPlans(seqs: number[]): Array<DeliveryPlan | undefined> {
    if (seqs.length === 1) {
      const row = this.stmts.plan.get(seqs[0] as number)
      return [row && deliveryPlanFromRow(row)]
    }
    const rows = new Map<number, PlanRow>()
    for (let i = 0; i < seqs.length; i += PLANS_PER_QUERY)
      for (const row of this.stmts.plans.all(JSON.stringify(seqs.slice(i, i + PLANS_PER_QUERY)))) rows.set(row.seq, row)
    return seqs.map((seq) => {
      const row = rows.get(seq)
      return row && deliveryPlanFromRow(row)
    })
  }

  /**
   * The attempts of one event-loop turn are recorded by one write job, in the turn's group commit, instead of one
   * job (and savepoint) each: a fan-out records hundreds per turn. Each is still recorded with its consequences in
   * the one transaction. Should the batch fail, it rolls back as one and each attempt is recorded again on its own,
   * so that one bad record fails alone.
   */
  recordAttempt(
    input: AttemptInput,
    decide: (ctx: DeliveryContext) => AttemptDecision,
  ): Promise<RecordedAttempt | undefined> {
    return new Promise((resolve, reject) => {
      this.recordings.push({ input, decide, resolve, reject })
      if (this.recordings.length === 1) this.recordBatch()
    })
  }

  private recordBatch(): void {
    let batch: Recording[] = []
    this.ctx.writes
      .run(() => {
        // Taken when the job runs: every attempt queued until the group commit rides along.
        batch = this.recordings
        this.recordings = []
        return batch.map((recording) => this.recordOne(recording))
      })
      .then(
        (results) => batch.forEach((recording, i) => recording.resolve(this.afterCommit(results[i]))),
        () => {
          for (const recording of batch) {
            this.ctx.writes
              .run(() => this.recordOne(recording))
              .then((result) => recording.resolve(this.afterCommit(result)), recording.reject)
          }
        },
      )
  }

  private recordOne({ input, decide }: Recording): Recorded | undefined {
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
  }

  private afterCommit(recorded: Recorded | undefined): RecordedAttempt | undefined {
    if (!recorded) return undefined
    if (recorded.decision.disable) this.webhooks.forget(recorded.workspaceId)
    return { attempt: recorded.attempt, decision: recorded.decision }
  }

  async get(eventId: string, webhookId: string): Promise<DeliveryRecord | undefined> {
    const row = this.stmts.byKey.get(eventId, webhookId)
    return row && deliveryFromRow(row)
  }

  async attempts(eventId: string, webhookId: string): Promise<DeliveryAttempt[]> {
    return this.stmts.attempts.all(eventId, webhookId).map(deliveryAttemptFromRow)
  }

  private insertAttempt(row: StateRow, input: AttemptInput, decision: AttemptDecision): DeliveryAttempt {
    const attempt = newDeliveryAttempt(row, input, decision, this.attemptId(input.attempted_at))
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
}
