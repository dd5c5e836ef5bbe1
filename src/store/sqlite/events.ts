import type { EventStore } from '../../app/store.js'
import { finaliseEvent, type EventDraft, type LatchkeyEvent } from '../../domain/events.js'
import type { Page } from '../../domain/page.js'
import type { EventListQuery } from '../../domain/queries.js'
import type { StoreContext } from './context.js'
import type { SqliteDeliveries } from './deliveries.js'
import { compare, equals, listPage, oneOf } from './list-query.js'

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
    // Newest first, as Seam lists events.
    return listPage<EventRow, LatchkeyEvent>(this.ctx.db, {
      select: 'seq, body',
      from: 'events',
      where: [
        equals('workspace_id', workspaceId),
        compare('created_at', '>=', query.since),
        compare('created_at', '<=', query.until),
        oneOf('device_id', query.deviceIds),
        oneOf('event_type', query.eventTypes),
        equals('action_attempt_id', query.actionAttemptId),
      ],
      order: 'desc',
      cursor: query.cursor,
      limit: query.limit,
      map: (row) => JSON.parse(row.body) as LatchkeyEvent,
    })
  }
}
