import type { DeliveryStore, RecordedAttempt } from '../../app/store.js'
import { batchPerTask } from '../../domain/batch.js'
import { iso } from '../../domain/clock.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRecord, DeliveryRef } from '../../domain/delivery.js'
import type { DeliveryStatus } from '../../domain/webhook-delivery.js'
import {
  DELIVERY_ATTEMPT_COLUMNS as ATTEMPT,
  DELIVERY_COLUMNS as DELIVERY,
  DELIVERY_REF_COLUMNS as REF,
  deliveryAttemptFromRow,
  deliveryAttemptIds,
  deliveryContext as contextOf,
  deliveryFromRow,
  deliveryRefFromRow as toRef,
  newDeliveryAttempt,
  SELECT_DELIVERY_PLAN,
  SELECT_DELIVERY_STATE,
  type DeliveryAttemptRow as AttemptRow,
  type DeliveryRow,
  type DeliveryRefRow as RefRow,
  type DeliveryStateRow as StateRow,
  type Flag,
} from '../rows.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import type { AttemptDecision, DeliveryContext } from '../../domain/webhook-delivery.js'
import type { StoreContext } from './context.js'
import { rawColumns } from './raw-rows.js'
import type { SqliteWebhooks } from './webhooks.js'

/** The plans of several deliveries: SELECT_DELIVERY_PLAN for a JSON array of seqs. */
const SELECT_DELIVERY_PLANS = SELECT_DELIVERY_PLAN.replace(
  /WHERE d\.seq = \?$/,
  'WHERE d.seq IN (SELECT value FROM json_each(?))',
)
if (SELECT_DELIVERY_PLANS === SELECT_DELIVERY_PLAN) throw new Error('SELECT_DELIVERY_PLAN no longer ends as expected')
const PLANS_PER_QUERY = 500

/**
 * The state read of an attempt, with the previous attempt's evidence (the chain of docs/deliveries.md) read from that
 * attempt's own row instead of a copy in the delivery's. The copy, 64 characters written by every attempt, made the
 * delivery's row outgrow its page: at 512-byte pages two deliveries share a page until their first attempt, and with
 * the copy each then moved to a page of its own, a page split per delivery
 * (docs/performance.md#third-pass-pages-per-delivery). Deliveries attempted before keep their copy until their next
 * attempt, which clears it.
 */
const SELECT_STATE = SELECT_DELIVERY_STATE.replace(
  'd.last_evidence_id,',
  `coalesce(d.last_evidence_id, (SELECT a.evidence_id FROM delivery_attempts a WHERE a.delivery_seq = d.seq
      ORDER BY a.attempt_number DESC LIMIT 1)) AS last_evidence_id,`,
)
if (SELECT_STATE === SELECT_DELIVERY_STATE) throw new Error('SELECT_DELIVERY_STATE no longer reads d.last_evidence_id')

/**
 * The two reads of every attempt (its plan before sending, its state when recorded) come back as arrays: better-sqlite3
 * builds a row object column by column, interning every column name of every row, which an array and one object
 * literal here avoid (docs/performance.md#webhook-fan-out). The column order is checked against these lists when the
 * statements are prepared.
 */
const PLAN_COLUMNS = [
  'seq',
  'webhook_id',
  'status',
  'held',
  'next_attempt_at',
  'event_id',
  'body',
  'url',
  'secret',
  'previous_secret',
  'previous_secret_expires_at',
  'enabled',
] as const
type PlanTuple = [
  number,
  string,
  string,
  Flag,
  string | null,
  string,
  string,
  string,
  string,
  string | null,
  string | null,
  Flag,
]
const STATE_COLUMNS = [
  'seq',
  'webhook_id',
  'status',
  'held',
  'next_attempt_at',
  'event_id',
  'workspace_id',
  'event_type',
  'attempt_count',
  'retries_scheduled',
  'last_attempt_at',
  'last_evidence_id',
  'created_at',
  'updated_at',
  'webhook_enabled',
  'webhook_deleted',
  'consecutive_failures',
] as const
type StateTuple = [
  number,
  string,
  string,
  Flag,
  string | null,
  string,
  string,
  string,
  number,
  number,
  string | null,
  string | null,
  string,
  string,
  Flag,
  Flag,
  number,
]

function planFromTuple(t: PlanTuple): DeliveryPlan {
  return {
    seq: t[0],
    webhook_id: t[1],
    status: t[2] as DeliveryStatus,
    held: t[3] === 1 || t[3] === true,
    next_attempt_at: t[4],
    event_id: t[5],
    body: t[6],
    webhook: {
      url: t[7],
      secret: t[8],
      previous_secret: t[9],
      previous_secret_expires_at: t[10],
      enabled: t[11] === 1 || t[11] === true,
    },
  }
}

function stateFromTuple(t: StateTuple): StateRow {
  return {
    seq: t[0],
    webhook_id: t[1],
    status: t[2],
    held: t[3],
    next_attempt_at: t[4],
    event_id: t[5],
    workspace_id: t[6],
    event_type: t[7],
    attempt_count: t[8],
    retries_scheduled: t[9],
    last_attempt_at: t[10],
    last_evidence_id: t[11],
    created_at: t[12],
    updated_at: t[13],
    webhook_enabled: t[14],
    webhook_deleted: t[15],
    consecutive_failures: t[16],
  }
}

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
      plan: rawColumns(db.prepare<[number], PlanTuple>(SELECT_DELIVERY_PLAN), PLAN_COLUMNS),
      plans: rawColumns(db.prepare<[string], PlanTuple>(SELECT_DELIVERY_PLANS), PLAN_COLUMNS),
      state: rawColumns(db.prepare<[number], StateTuple>(SELECT_STATE), STATE_COLUMNS),
      byKey: db.prepare<[string, string], DeliveryRow>(
        `SELECT ${DELIVERY} FROM deliveries WHERE event_seq = (SELECT seq FROM events WHERE event_id = ?) AND webhook_id = ?`,
      ),
      insertAttempt: db.prepare(
        `INSERT INTO delivery_attempts (attempt_id, delivery_seq, workspace_id, event_id, webhook_id, event_type, attempt_number,
           manual, status, attempted_at, duration_ms, response_code, response_headers, response_body, error_message, signature,
           will_retry, evidence_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // last_evidence_id: read from the attempt's row from now on (SELECT_STATE).
      updateDelivery: db.prepare(
        `UPDATE deliveries SET status = ?, held = ?, next_attempt_at = ?, attempt_count = ?, retries_scheduled = ?,
           last_attempt_at = ?, last_evidence_id = NULL, updated_at = ? WHERE seq = ?`,
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
      return [row && planFromTuple(row)]
    }
    const rows = new Map<number, PlanTuple>()
    for (let i = 0; i < seqs.length; i += PLANS_PER_QUERY)
      for (const row of this.stmts.plans.all(JSON.stringify(seqs.slice(i, i + PLANS_PER_QUERY)))) rows.set(row[0], row)
    return seqs.map((seq) => {
      const row = rows.get(seq)
      return row && planFromTuple(row)
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
    const tuple = this.stmts.state.get(input.delivery_seq)
    if (!tuple) return undefined
    const row = stateFromTuple(tuple)
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
