import type { AttemptStore, WriteOptions } from '../../app/store.js'
import type { AttemptRecord, HistoryEntry, Transition } from '../../domain/attempt.js'
import type { EventDraft, LatchkeyEvent } from '../../domain/events.js'
import type { Page } from '../../domain/page.js'
import type { AttemptListQuery } from '../../domain/queries.js'
import { ATTEMPT_COLUMN_NAMES, ATTEMPT_COLUMNS, attemptFromRow, attemptRowOf, type AttemptRow } from '../rows.js'
import type { StoreContext } from './context.js'
import type { SqliteEvents } from './events.js'
import { equals, listPage, oneOf } from './list-query.js'
import { rawColumns } from './raw-rows.js'

/**
 * The attempt's history column (a JSON array, oldest entry first) with the entries of `@history` (a JSON array too,
 * possibly empty) appended: the text is spliced rather than parsed, since both are compact arrays this class wrote.
 * On a column in the row every transition rewrites anyway, history costs no page of its own (docs/performance.md).
 */
const APPEND_HISTORY = `CASE WHEN @history = '[]' THEN history WHEN history = '[]' THEN @history
  ELSE substr(history, 1, length(history) - 1) || ',' || substr(@history, 2) END`

export class SqliteAttempts implements AttemptStore {
  private readonly stmts

  constructor(
    private readonly ctx: StoreContext,
    private readonly events: SqliteEvents,
  ) {
    const db = ctx.db
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO action_attempts (action_attempt_id, workspace_id, device_id, action_type, status, result, error, created_at,
           updated_at, sent_at, accepted_at, completed_at, deadline_at, idempotency_key, request_hash, history)
         VALUES (@action_attempt_id, @workspace_id, @device_id, @action_type, @status, @result, @error, @created_at,
           @updated_at, @sent_at, @accepted_at, @completed_at, @deadline_at, @idempotency_key, @request_hash, @history)`,
      ),
      update: db.prepare(
        `UPDATE action_attempts SET status = @status, result = @result, error = @error, updated_at = @updated_at,
           sent_at = @sent_at, accepted_at = @accepted_at, completed_at = @completed_at, history = ${APPEND_HISTORY}
         WHERE action_attempt_id = @action_attempt_id`,
      ),
      // A pending attempt's status, result and error stay as they were until it settles: leaving them out of the
      // SET keeps SQLite from rewriting the attempts_pending index entry (a page per commit).
      updatePending: db.prepare(
        `UPDATE action_attempts SET updated_at = @updated_at, sent_at = @sent_at, accepted_at = @accepted_at,
           completed_at = @completed_at, history = ${APPEND_HISTORY} WHERE action_attempt_id = @action_attempt_id`,
      ),
      appendHistory: db.prepare(
        `UPDATE action_attempts SET history = ${APPEND_HISTORY} WHERE action_attempt_id = @action_attempt_id`,
      ),
      // Read by every ack's write job.
      byId: rawColumns(
        db.prepare<[string], unknown[]>(`SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ?`),
        ATTEMPT_COLUMN_NAMES,
      ),
      byWorkspace: db.prepare<[string, string], AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ? AND workspace_id = ?`,
      ),
      byKey: db.prepare<[string, string], AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE workspace_id = ? AND idempotency_key = ?`,
      ),
      releaseKey: db.prepare(
        'UPDATE action_attempts SET idempotency_key = NULL WHERE workspace_id = ? AND idempotency_key = ?',
      ),
      pending: db.prepare<[], AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE status = 'pending' ORDER BY seq`,
      ),
      pendingForDevice: db.prepare<[string], AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE status = 'pending' AND device_id = ? ORDER BY seq`,
      ),
      historyOf: db.prepare<[string], { history: string }>(
        'SELECT history FROM action_attempts WHERE action_attempt_id = ?',
      ),
      setLocked: db.prepare('UPDATE devices SET locked = ? WHERE device_id = ?'),
    }
  }

  async create(attempt: AttemptRecord, history: HistoryEntry[], events: EventDraft[]): Promise<void> {
    const recorded = await this.ctx.writes.run(() => {
      this.stmts.insert.run({ ...toParams(attempt), history: JSON.stringify(history) })
      return this.events.record(events)
    })
    this.ctx.onEvents(recorded)
  }

  async get(workspaceId: string, attemptId: string): Promise<AttemptRecord | undefined> {
    const row = this.stmts.byWorkspace.get(attemptId, workspaceId)
    return row && attemptFromRow(row)
  }

  async getById(attemptId: string): Promise<AttemptRecord | undefined> {
    const values = this.stmts.byId.get(attemptId)
    return values && attemptFromRow(attemptRowOf(values))
  }

  async list(workspaceId: string, query: AttemptListQuery): Promise<Page<AttemptRecord>> {
    return listPage<AttemptRow, AttemptRecord>(this.ctx.db, {
      select: ATTEMPT_COLUMNS,
      from: 'action_attempts',
      where: [
        equals('workspace_id', workspaceId),
        oneOf('action_attempt_id', query.attemptIds),
        equals('device_id', query.deviceId),
      ],
      order: 'desc',
      cursor: query.cursor,
      limit: query.limit,
      map: attemptFromRow,
    })
  }

  async history(attemptId: string): Promise<HistoryEntry[]> {
    const row = this.stmts.historyOf.get(attemptId)
    if (!row) return []
    return (JSON.parse(row.history) as HistoryEntry[]).map((entry) => ({
      kind: entry.kind,
      at: entry.at,
      ...(entry.detail ? { detail: entry.detail } : {}),
    }))
  }

  async findByIdempotencyKey(workspaceId: string, key: string): Promise<AttemptRecord | undefined> {
    const row = this.stmts.byKey.get(workspaceId, key)
    return row && attemptFromRow(row)
  }

  async releaseIdempotencyKey(workspaceId: string, key: string): Promise<void> {
    await this.ctx.writes.run(() => this.stmts.releaseKey.run(workspaceId, key))
  }

  async transition(
    attemptId: string,
    decide: (attempt: AttemptRecord) => Transition,
    options: WriteOptions & { deviceId?: string } = {},
  ): Promise<Transition | undefined> {
    const { deviceId } = options
    const outcome = await this.ctx.writes.run(() => {
      const values = this.stmts.byId.get(attemptId)
      if (!values) return undefined
      const row = attemptRowOf(values)
      if (deviceId !== undefined && row.device_id !== deviceId) return undefined
      const transition = decide(attemptFromRow(row))
      return { transition, events: this.applyInTransaction(transition) }
    }, options.urgent)
    if (!outcome) return undefined
    this.ctx.onEvents(outcome.events)
    return outcome.transition
  }

  async listPending(): Promise<AttemptRecord[]> {
    return this.stmts.pending.all().map(attemptFromRow)
  }

  /** For the device repository: pending attempts of a device, read inside its transaction. */
  pendingForDevice(deviceId: string): AttemptRecord[] {
    return this.stmts.pendingForDevice.all(deviceId).map(attemptFromRow)
  }

  /** Writes a transition's effects; must run inside a write transaction. */
  applyInTransaction(transition: Transition): LatchkeyEvent[] {
    const history = JSON.stringify(transition.history)
    if (!transition.changed) {
      if (transition.history.length > 0)
        this.stmts.appendHistory.run({ action_attempt_id: transition.attempt.action_attempt_id, history })
      return []
    }
    const update = transition.attempt.status === 'pending' ? this.stmts.updatePending : this.stmts.update
    update.run({ ...toParams(transition.attempt), history })
    if (transition.locked !== undefined)
      this.stmts.setLocked.run(transition.locked ? 1 : 0, transition.attempt.device_id)
    return this.events.record(transition.events)
  }
}

function toParams(attempt: AttemptRecord): Record<string, unknown> {
  return {
    ...attempt,
    result: attempt.result === null ? null : JSON.stringify(attempt.result),
    error: attempt.error === null ? null : JSON.stringify(attempt.error),
  }
}
