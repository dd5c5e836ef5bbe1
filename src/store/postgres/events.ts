import type { EventStore } from '../../app/store.js'
import type { EventListQuery } from '../../domain/queries.js'
import type { Page } from '../../domain/page.js'
import { finaliseEvent, type EventDraft, type LatchkeyEvent } from '../../domain/events.js'
import { decodeSeqCursor } from '../../domain/cursor.js'
import { toPage } from '../../domain/page.js'
import type { PgContext } from './context.js'
import type { Tx } from './database.js'
import type { PgWebhooks } from './webhooks.js'
import { OUTBOX_CHANNEL } from './notify.js'

interface EventRow {
  seq: number
  body: string
}

/**
 * The event log, and the outbox writer every other repository calls inside its own transaction: an event is
 * committed with the change that caused it or not at all, and so is one delivery per webhook it goes to (held while
 * the webhook is disabled). One statement per event: the event and its deliveries.
 */
export class PgEvents implements EventStore {
  constructor(
    private readonly ctx: PgContext,
    private readonly webhooks: PgWebhooks,
  ) {}

  /** Must run inside a write transaction. Returns the committed envelopes, for the post-commit notification. */
  async record(tx: Tx, drafts: EventDraft[], dedupeKey?: string): Promise<LatchkeyEvent[]> {
    if (drafts.length === 0) return []
    const createdAt = this.ctx.now()
    const recorded: LatchkeyEvent[] = []
    for (const [i, draft] of drafts.entries()) {
      const event = finaliseEvent(draft, this.ctx.newId(), createdAt)
      const key = dedupeKey === undefined ? null : `${dedupeKey}#${i}`
      const hooks = await this.webhooks.matching(tx, event.workspace_id, event.event_type)
      tx.write(
        `WITH e AS (
           INSERT INTO events (event_id, workspace_id, event_type, device_id, action_attempt_id, created_at, dedupe_key, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq, event_id, workspace_id, event_type, created_at)
         INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held, next_attempt_at,
           created_at, updated_at)
         SELECT e.seq, e.event_id, w.webhook_id, e.workspace_id, e.event_type, 'pending', NOT w.enabled,
           CASE WHEN w.enabled THEN e.created_at END, e.created_at, e.created_at
         FROM e, unnest(?::text[], ?::boolean[]) WITH ORDINALITY AS w(webhook_id, enabled, n) ORDER BY w.n`,
        [
          event.event_id,
          event.workspace_id,
          event.event_type,
          event.device_id ?? null,
          event.action_attempt_id ?? null,
          createdAt,
          key,
          JSON.stringify(event),
          hooks.map((hook) => hook.webhook_id),
          hooks.map((hook) => hook.enabled),
        ],
      )
      recorded.push(event)
      // Delivered on commit: wakes every instance's dispatcher (docs/scale-out.md#waking). Notifications alike in
      // one transaction are folded into one.
      if (hooks.some((hook) => hook.enabled)) tx.write(`SELECT pg_notify('${OUTBOX_CHANNEL}', '')`)
    }
    return recorded
  }

  async get(workspaceId: string, eventId: string): Promise<LatchkeyEvent | undefined> {
    const rows = await this.ctx.db.query<EventRow>(
      'SELECT seq, body FROM events WHERE event_id = ? AND workspace_id = ?',
      [eventId, workspaceId],
    )
    return rows[0] ? (JSON.parse(rows[0].body) as LatchkeyEvent) : undefined
  }

  async list(workspaceId: string, query: EventListQuery): Promise<Page<LatchkeyEvent>> {
    const where = ['workspace_id = ?', 'created_at >= ?']
    const params: unknown[] = [workspaceId, query.since]
    if (query.until !== undefined) {
      where.push('created_at <= ?')
      params.push(query.until)
    }
    if (query.deviceIds?.length) {
      where.push('device_id = ANY(?::text[])')
      params.push(query.deviceIds)
    }
    if (query.eventTypes?.length) {
      where.push('event_type = ANY(?::text[])')
      params.push(query.eventTypes)
    }
    if (query.actionAttemptId !== undefined) {
      where.push('action_attempt_id = ?')
      params.push(query.actionAttemptId)
    }
    const after = decodeSeqCursor(query.cursor)
    if (after !== undefined) {
      where.push('seq < ?')
      params.push(after)
    }
    // Newest first, as Seam lists events.
    const rows = await this.ctx.db.query<EventRow>(
      `SELECT seq, body FROM events WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
      [...params, query.limit + 1],
    )
    return toPage(rows, query.limit, (row) => JSON.parse(row.body) as LatchkeyEvent)
  }
}
