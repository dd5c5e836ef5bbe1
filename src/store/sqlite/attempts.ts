import type { AttemptStore, WriteOptions } from '../../app/store.js'
import type { AttemptRecord, HistoryEntry, Transition } from '../../domain/attempt.js'
import type { EventDraft, LatchkeyEvent } from '../../domain/events.js'
import type { Page } from '../../domain/page.js'
import type { AttemptListQuery } from '../../domain/queries.js'
import { ATTEMPT_COLUMNS, attemptFromRow, type AttemptRow } from '../rows.js'
import type { StoreContext } from './context.js'
import type { SqliteEvents } from './events.js'
import { equals, listPage, oneOf } from './list-query.js'

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
           updated_at, sent_at, accepted_at, completed_at, deadline_at, idempotency_key, request_hash)
         VALUES (@action_attempt_id, @workspace_id, @device_id, @action_type, @status, @result, @error, @created_at,
           @updated_at, @sent_at, @accepted_at, @completed_at, @deadline_at, @idempotency_key, @request_hash)`,
      ),
      update: db.prepare(
        `UPDATE action_attempts SET status = @status, result = @result, error = @error, updated_at = @updated_at,
           sent_at = @sent_at, accepted_at = @accepted_at, completed_at = @completed_at WHERE action_attempt_id = @action_attempt_id`,
      ),
      // A pending attempt's status, result and error stay as they were until it settles: leaving them out of the
      // SET keeps SQLite from rewriting the attempts_pending index entry (a page per commit).
      updatePending: db.prepare(
        `UPDATE action_attempts SET updated_at = @updated_at, sent_at = @sent_at, accepted_at = @accepted_at,
           completed_at = @completed_at WHERE action_attempt_id = @action_attempt_id`,
      ),
      history: db.prepare('INSERT INTO attempt_history (action_attempt_id, at, kind, detail) VALUES (?, ?, ?, ?)'),
      byId: db.prepare<[string], AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ?`,
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
      historyOf: db.prepare<[string], { at: string; kind: string; detail: string | null }>(
        'SELECT at, kind, detail FROM attempt_history WHERE action_attempt_id = ? ORDER BY rowid',
      ),
      setLocked: db.prepare('UPDATE devices SET locked = ? WHERE device_id = ?'),
    }
  }

  async create(attempt: AttemptRecord, history: HistoryEntry[], events: EventDraft[]): Promise<void> {
    const recorded = await this.ctx.writes.run(() => {
      this.stmts.insert.run(toParams(attempt))
      for (const entry of history) this.insertHistory(attempt.action_attempt_id, entry)
      return this.events.record(events)
    })
    this.ctx.onEvents(recorded)
  }

  async get(workspaceId: string, attemptId: string): Promise<AttemptRecord | undefined> {
    const row = this.stmts.byWorkspace.get(attemptId, workspaceId)
    return row && attemptFromRow(row)
  }

  async getById(attemptId: string): Promise<AttemptRecord | undefined> {
    const row = this.stmts.byId.get(attemptId)
    return row && attemptFromRow(row)
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
    return this.stmts.historyOf.all(attemptId).map((row) => ({
      kind: row.kind as HistoryEntry['kind'],
      at: row.at,
      ...(row.detail ? { detail: JSON.parse(row.detail) as Record<string, unknown> } : {}),
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
      const row = this.stmts.byId.get(attemptId)
      if (!row || (deviceId !== undefined && row.device_id !== deviceId)) return undefined
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
    const id = transition.attempt.action_attempt_id
    for (const entry of transition.history) this.insertHistory(id, entry)
    if (!transition.changed) return []
    const update = transition.attempt.status === 'pending' ? this.stmts.updatePending : this.stmts.update
    update.run(toParams(transition.attempt))
    if (transition.locked !== undefined)
      this.stmts.setLocked.run(transition.locked ? 1 : 0, transition.attempt.device_id)
    return this.events.record(transition.events)
  }

  private insertHistory(attemptId: string, entry: HistoryEntry): void {
    this.stmts.history.run(attemptId, entry.at, entry.kind, entry.detail ? JSON.stringify(entry.detail) : null)
  }
}

function toParams(attempt: AttemptRecord): Record<string, unknown> {
  return {
    ...attempt,
    result: attempt.result === null ? null : JSON.stringify(attempt.result),
    error: attempt.error === null ? null : JSON.stringify(attempt.error),
  }
}
