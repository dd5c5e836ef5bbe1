import type { EventListQuery, EventStore, Page } from '../../app/store.js'
import { finaliseEvent, type EventDraft, type LatchkeyEvent } from '../../domain/events.js'
import type { StoreContext } from './context.js'
import { placeholders } from './context.js'
import { decodeCursor, toPage } from './cursor.js'
import type { SqliteDeliveries } from './deliveries.js'

interface EventRow {
  seq: number
  body: string
}

/**
 * The event log, and the outbox writer every other repository calls inside its own transaction: an event is
 * committed with its change or not at all (the outbox, docs/design.md), and so is one delivery per webhook it goes to.
 */
export class SqliteEvents implements EventStore {
  private readonly insert
  private readonly byId

  constructor(
    private readonly ctx: StoreContext,
    private readonly deliveries: Pick<SqliteDeliveries, 'insertForEvent'>,
  ) {
    this.insert = ctx.db.prepare(
      `INSERT INTO events (event_id, workspace_id, event_type, device_id, action_attempt_id, created_at, dedupe_key, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.byId = ctx.db.prepare<[string, string], EventRow>(
      'SELECT seq, body FROM events WHERE event_id = ? AND workspace_id = ?',
    )
  }

  /** Must run inside a write transaction. Returns the committed envelopes, for the post-commit notification. */
  record(drafts: EventDraft[], dedupeKey?: string): LatchkeyEvent[] {
    const createdAt = this.ctx.now()
    return drafts.map((draft, i) => {
      const event = finaliseEvent(draft, this.ctx.newId(), createdAt)
      const key = dedupeKey === undefined ? null : `${dedupeKey}#${i}`
      const info = this.insert.run(
        event.event_id,
        event.workspace_id,
        event.event_type,
        event.device_id ?? null,
        event.action_attempt_id ?? null,
        createdAt,
        key,
        JSON.stringify(event),
      )
      this.deliveries.insertForEvent(event, Number(info.lastInsertRowid))
      return event
    })
  }

  async get(workspaceId: string, eventId: string): Promise<LatchkeyEvent | undefined> {
    const row = this.byId.get(eventId, workspaceId)
    return row ? (JSON.parse(row.body) as LatchkeyEvent) : undefined
  }

  async list(workspaceId: string, query: EventListQuery): Promise<Page<LatchkeyEvent>> {
    const where = ['workspace_id = ?', 'created_at >= ?']
    const params: unknown[] = [workspaceId, query.since]
    if (query.until !== undefined) {
      where.push('created_at <= ?')
      params.push(query.until)
    }
    if (query.deviceIds?.length) {
      where.push(`device_id IN (${placeholders(query.deviceIds.length)})`)
      params.push(...query.deviceIds)
    }
    if (query.eventTypes?.length) {
      where.push(`event_type IN (${placeholders(query.eventTypes.length)})`)
      params.push(...query.eventTypes)
    }
    if (query.actionAttemptId !== undefined) {
      where.push('action_attempt_id = ?')
      params.push(query.actionAttemptId)
    }
    const after = decodeCursor(query.cursor)
    if (after !== undefined) {
      where.push('seq < ?')
      params.push(after)
    }
    // Newest first, as Seam lists events.
    const rows = this.ctx.db
      .prepare<unknown[], EventRow>(
        `SELECT seq, body FROM events WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
      )
      .all(...params, query.limit + 1)
    return toPage(rows, query.limit, (row) => JSON.parse(row.body) as LatchkeyEvent)
  }
}
