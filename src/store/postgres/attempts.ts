import { ATTEMPT_SETTLED_CHANNEL } from './notify.js'
import type { AttemptStore, WriteOptions } from '../../app/store.js'
import type { AttemptListQuery } from '../../domain/queries.js'
import type { Page } from '../../domain/page.js'
import type { AttemptRecord, HistoryEntry, Transition } from '../../domain/attempt.js'
import type { EventDraft, LatchkeyEvent } from '../../domain/events.js'
import { decodeSeqCursor } from '../../domain/cursor.js'
import { toPage } from '../../domain/page.js'
import { ATTEMPT_COLUMNS, attemptFromRow, type AttemptRow } from '../rows.js'
import type { PgContext } from './context.js'
import { combined, type Cte, type SqlStatement, type Tx, type WriteJobOptions } from './database.js'
import { gatedStatement, type PgEvents } from './events.js'
import type { Remembered, RememberedRow } from './remembered.js'
import type { DeviceRecord } from '../../domain/device.js'

/**
 * A settle notification's attempt id, or undefined when `origin` (this store) sent it: the store that settles an
 * attempt answers its own waiters when its commit returns, so reading the attempt back again would be wasted.
 */
export function settledNotification(payload: string, origin: string): string | undefined {
  const space = payload.indexOf(' ')
  if (space < 0) return payload
  return payload.slice(space + 1) === origin ? undefined : payload.slice(0, space)
}

const json = (value: unknown) => (value === null ? null : JSON.stringify(value))

export class PgAttempts implements AttemptStore {
  constructor(
    private readonly ctx: PgContext,
    private readonly events: PgEvents,
    /** This store's tag in its settle notifications, by which it skips its own (settledNotification). */
    private readonly origin: string,
    /**
     * The pending attempts this store created or moved last, and the devices whose row it changed last. The next
     * transition of a remembered attempt is decided on that row: no read, no row lock, one statement.
     */
    private readonly remembered: { attempts: Remembered<AttemptRecord>; devices: Remembered<DeviceRecord> },
  ) {}

  private remember(attempt: AttemptRecord, version: number): void {
    if (attempt.status === 'pending') this.remembered.attempts.set(attempt.action_attempt_id, attempt, version)
    else this.remembered.attempts.forget(attempt.action_attempt_id)
  }

  async create(attempt: AttemptRecord, history: HistoryEntry[], events: EventDraft[]): Promise<void> {
    const job = { keys: [`attempt:${attempt.action_attempt_id}`] }
    const recorded = await this.ctx.db.writes.run(async (tx) => {
      const a = attempt
      const insert = {
        text: `INSERT INTO action_attempts (action_attempt_id, workspace_id, device_id, action_type, status, result,
           error, created_at, updated_at, sent_at, accepted_at, completed_at, deadline_at, idempotency_key, request_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        params: [
          a.action_attempt_id,
          a.workspace_id,
          a.device_id,
          a.action_type,
          a.status,
          json(a.result),
          json(a.error),
          a.created_at,
          a.updated_at,
          a.sent_at,
          a.accepted_at,
          a.completed_at,
          a.deadline_at,
          a.idempotency_key,
          a.request_hash,
        ],
      }
      write(tx, [insert, ...historyStatement(a.action_attempt_id, history)])
      this.remember(a, 0)
      return this.events.record(tx, events)
    }, job)
    this.ctx.onEvents(recorded)
  }

  async get(workspaceId: string, attemptId: string): Promise<AttemptRecord | undefined> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ? AND workspace_id = ?`,
      [attemptId, workspaceId],
    )
    return rows[0] && attemptFromRow(rows[0])
  }

  async getById(attemptId: string): Promise<AttemptRecord | undefined> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ?`,
      [attemptId],
    )
    return rows[0] && attemptFromRow(rows[0])
  }

  async list(workspaceId: string, query: AttemptListQuery): Promise<Page<AttemptRecord>> {
    const where = ['workspace_id = ?']
    const params: unknown[] = [workspaceId]
    if (query.attemptIds?.length) {
      where.push('action_attempt_id = ANY(?::text[])')
      params.push(query.attemptIds)
    }
    if (query.deviceId !== undefined) {
      where.push('device_id = ?')
      params.push(query.deviceId)
    }
    const after = decodeSeqCursor(query.cursor)
    if (after !== undefined) {
      where.push('seq < ?')
      params.push(after)
    }
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
      [...params, query.limit + 1],
    )
    return toPage(rows, query.limit, attemptFromRow)
  }

  async history(attemptId: string): Promise<HistoryEntry[]> {
    const rows = await this.ctx.db.query<{ at: string; kind: string; detail: string | null }>(
      'SELECT at, kind, detail FROM attempt_history WHERE action_attempt_id = ? ORDER BY seq',
      [attemptId],
    )
    return rows.map((row) => ({
      kind: row.kind as HistoryEntry['kind'],
      at: row.at,
      ...(row.detail ? { detail: JSON.parse(row.detail) as Record<string, unknown> } : {}),
    }))
  }

  async findByIdempotencyKey(workspaceId: string, key: string): Promise<AttemptRecord | undefined> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE workspace_id = ? AND idempotency_key = ?`,
      [workspaceId, key],
    )
    return rows[0] && attemptFromRow(rows[0])
  }

  async releaseIdempotencyKey(workspaceId: string, key: string): Promise<void> {
    await this.ctx.db.writes.run((tx) =>
      tx.exec(
        'UPDATE action_attempts SET idempotency_key = NULL, version = version + 1 WHERE workspace_id = ? AND idempotency_key = ?',
        [workspaceId, key],
      ),
    )
  }

  async transition(
    attemptId: string,
    decide: (attempt: AttemptRecord) => Transition,
    options: WriteOptions & { deviceId?: string } = {},
  ): Promise<Transition | undefined> {
    const { deviceId } = options
    // It reads only its attempt, and only writes its device's `locked`. Without the device named, it runs alone.
    const job: WriteJobOptions = { urgent: options.urgent }
    if (deviceId !== undefined)
      Object.assign(job, { keys: [`attempt:${attemptId}`], writesAfter: [`device:${deviceId}`] })
    const outcome = await this.ctx.db.writes.run(async (tx) => {
      const known = tx.rerun ? undefined : this.remembered.attempts.get(attemptId)
      if (known && (deviceId === undefined || known.row.device_id === deviceId)) {
        const transition = decide(known.row)
        if (transition.changed) return { transition, events: await this.writeIfUnchanged(tx, transition, known) }
      }
      const rows = await tx.query<AttemptRow & { version: number }>(
        // Locked: another instance's settle of this attempt waits for this one and then decides on what it left.
        `SELECT ${ATTEMPT_COLUMNS}, version FROM action_attempts WHERE action_attempt_id = ? FOR UPDATE`,
        [attemptId],
      )
      const row = rows[0]
      if (!row || (deviceId !== undefined && row.device_id !== deviceId)) return undefined
      const transition = decide(attemptFromRow(row))
      const events = await this.applyInTransaction(tx, transition)
      this.remember(transition.attempt, transition.changed ? row.version + 1 : row.version)
      return { transition, events }
    }, job)
    if (!outcome) return undefined
    this.ctx.onEvents(outcome.events)
    return outcome.transition
  }

  async listPending(): Promise<AttemptRecord[]> {
    const rows = await this.ctx.db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE status = 'pending' ORDER BY seq`,
    )
    return rows.map(attemptFromRow)
  }

  /**
   * The deadline sweep (docs/scale-out.md#deadlines): locks due pending attempts, skipping those another transaction
   * holds, and settles them in this transaction. Its row locks are the deadlines' claims: whoever holds one settles
   * that attempt; whoever comes after finds it no longer pending.
   */
  async expireDue(now: string, limit: number, decide: (attempt: AttemptRecord) => Transition): Promise<Transition[]> {
    const outcome = await this.ctx.db.writes.run(async (tx) => {
      const rows = await tx.query<AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE status = 'pending' AND deadline_at <= ?
         ORDER BY deadline_at LIMIT ? FOR UPDATE SKIP LOCKED`,
        [now, limit],
      )
      const transitions: Transition[] = []
      const events: LatchkeyEvent[] = []
      for (const row of rows) {
        const transition = decide(attemptFromRow(row))
        transitions.push(transition)
        events.push(...(await this.applyInTransaction(tx, transition)))
      }
      return { transitions, events }
    })
    this.ctx.onEvents(outcome.events)
    return outcome.transitions
  }

  /** For the device repository: pending attempts of a device, read inside its transaction. */
  async pendingForDevice(tx: Tx, deviceId: string): Promise<AttemptRecord[]> {
    const rows = await tx.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE status = 'pending' AND device_id = ? ORDER BY seq
       FOR UPDATE`,
      [deviceId],
    )
    return rows.map(attemptFromRow)
  }

  /**
   * Writes a transition decided on the remembered row, as one statement that writes nothing unless the row is still
   * at that version and `updated_at`. If the row moved on, the job runs again and decides on the row as it is.
   */
  private async writeIfUnchanged(
    tx: Tx,
    transition: Transition,
    { row: before, version }: RememberedRow<AttemptRecord>,
  ): Promise<LatchkeyEvent[]> {
    const a = transition.attempt
    // An instance older than the version column changes the row without raising it, but not its updated_at.
    const { statement, events } = await this.transitionStatement(tx, transition, {
      text: 'AND version = ? AND updated_at = ?',
      params: [version, before.updated_at],
    })
    tx.writeIfCurrent(statement.text, statement.params, () => {
      this.remembered.attempts.forget(a.action_attempt_id)
      this.remembered.devices.forget(a.device_id)
    })
    this.remember(a, version + 1)
    if (transition.locked !== undefined) this.lockedRemembered(a.device_id, transition.locked)
    return events
  }

  /**
   * The device's `locked` as this store writes it, on the device's remembered row: one version up. If another change
   * of the device came between, the remembered version is not the row's, and the device's next change decided on it
   * runs again on the row as it is.
   */
  private lockedRemembered(deviceId: string, locked: boolean): void {
    const known = this.remembered.devices.get(deviceId)
    if (known)
      this.remembered.devices.set(deviceId, { ...known.row, props: { ...known.row.props, locked } }, known.version + 1)
  }

  /** Writes a transition's effects on the row the caller holds locked; runs inside a write transaction. */
  async applyInTransaction(tx: Tx, transition: Transition): Promise<LatchkeyEvent[]> {
    const a = transition.attempt
    // Whoever calls this holds the row as it is: what was remembered of it may be behind.
    this.remembered.attempts.forget(a.action_attempt_id)
    if (!transition.changed) {
      write(tx, historyStatement(a.action_attempt_id, transition.history))
      return []
    }
    if (transition.locked !== undefined) this.remembered.devices.forget(a.device_id)
    const { statement, events } = await this.transitionStatement(tx, transition)
    tx.write(statement.text, statement.params)
    return events
  }

  /**
   * A transition that changes the attempt as one statement, every part gated on the attempt's UPDATE (with `guard`,
   * more conditions on the row): the row, its history, the device's `locked`, its events with their deliveries, and
   * the notification that wakes the instance whose request waits for the attempt (docs/scale-out.md#attempts).
   */
  private async transitionStatement(
    tx: Tx,
    transition: Transition,
    guard: SqlStatement = { text: '', params: [] },
  ): Promise<{ statement: SqlStatement; events: LatchkeyEvent[] }> {
    const a = transition.attempt
    const ctes: Cte[] = [
      {
        name: 'u',
        text: `UPDATE action_attempts SET status = ?, result = ?, error = ?, updated_at = ?, sent_at = ?,
           accepted_at = ?, completed_at = ?, version = version + 1
         WHERE action_attempt_id = ? ${guard.text} RETURNING 1`,
        params: [
          a.status,
          json(a.result),
          json(a.error),
          a.updated_at,
          a.sent_at,
          a.accepted_at,
          a.completed_at,
          a.action_attempt_id,
          ...guard.params,
        ],
      },
      ...historyStatement(a.action_attempt_id, transition.history, 'u').map((part) => ({ name: 'hist', ...part })),
    ]
    if (transition.locked !== undefined)
      ctes.push({
        name: 'd',
        text: `UPDATE devices SET locked = ?, version = version + 1 WHERE device_id = ? AND EXISTS (SELECT 1 FROM u)`,
        params: [transition.locked, a.device_id],
      })
    const part = await this.events.insertion(tx, transition.events, undefined, 'u')
    const notices = transition.settled
      ? [{ text: `pg_notify('${ATTEMPT_SETTLED_CHANNEL}', ?)`, params: [`${a.action_attempt_id} ${this.origin}`] }]
      : []
    return { statement: gatedStatement(ctes, part, notices), events: part?.events ?? [] }
  }
}

/** The statements as one (combined), written to the transaction. */
function write(tx: Tx, parts: readonly SqlStatement[]): void {
  const statement = combined(parts)
  if (statement) tx.write(statement.text, statement.params)
}

/** The history entries' insert; with `gate` (a CTE of the same statement), only if the gate yields a row. */
function historyStatement(attemptId: string, entries: HistoryEntry[], gate?: string): SqlStatement[] {
  if (entries.length === 0) return []
  return [
    {
      text: `INSERT INTO attempt_history (action_attempt_id, at, kind, detail)
       SELECT ?, h.at, h.kind, h.detail FROM ${gate === undefined ? '' : `${gate}, `}unnest(?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS h(at, kind, detail, n)
       ORDER BY h.n`,
      params: [
        attemptId,
        entries.map((e) => e.at),
        entries.map((e) => e.kind),
        entries.map((e) => (e.detail ? JSON.stringify(e.detail) : null)),
      ],
    },
  ]
}
