import type { EventStore } from '../../app/store.js'
import type { EventListQuery } from '../../domain/queries.js'
import type { Page } from '../../domain/page.js'
import { finaliseEvent, type EventDraft, type LatchkeyEvent } from '../../domain/events.js'
import { decodeSeqCursor } from '../../domain/cursor.js'
import { toPage } from '../../domain/page.js'
import type { PgContext } from './context.js'
import { withCtes, type Cte, type SqlStatement, type Tx } from './database.js'
import type { PgWebhooks } from './webhooks.js'
import { OUTBOX_CHANNEL } from './notify.js'

/** Events' insert and their deliveries' as parts of a statement (PgEvents.insertion). */
export interface EventInsertion {
  ctes: Cte[]
  outer: SqlStatement
  events: LatchkeyEvent[]
  /** A delivery is due at once: the transaction wakes the dispatchers. */
  wakes: boolean
}

/**
 * One statement: the `leading` parts, then the events and their deliveries, then, if a delivery is due at once,
 * the notification that wakes every instance's dispatcher on commit (docs/scale-out.md#waking; PostgreSQL folds
 * notifications alike in one transaction into one).
 */
export function eventStatement(leading: readonly Cte[], part: EventInsertion): SqlStatement {
  const ctes = [...leading, ...part.ctes]
  if (!part.wakes) return withCtes(ctes, part.outer)
  return withCtes([...ctes, { name: 'q', ...part.outer }], {
    text: `SELECT pg_notify('${OUTBOX_CHANNEL}', '')`,
    params: [],
  })
}

/**
 * One statement whose every part is gated on the CTE `gate` (its first part, which yields a row or none): the
 * `leading` parts, then the events and their deliveries, then a SELECT from the gate that sends `notices` (the
 * dispatchers' wake-up too, if a delivery is due at once) and yields a row if the gate did.
 */
export function gatedStatement(
  leading: readonly Cte[],
  part: EventInsertion | undefined,
  notices: readonly SqlStatement[],
): SqlStatement {
  const gate = leading[0]?.name
  const ctes = part ? [...leading, ...part.ctes, { name: 'q', ...part.outer }] : leading
  const sent = part?.wakes ? [...notices, { text: `pg_notify('${OUTBOX_CHANNEL}', '')`, params: [] }] : notices
  return withCtes(ctes, {
    text: `SELECT ${['1 AS applied', ...sent.map((notice) => notice.text)].join(', ')} FROM ${gate}`,
    params: sent.flatMap((notice) => notice.params),
  })
}

interface EventRow {
  seq: number
  body: string
}

/**
 * The event log, and the outbox writer every other repository calls inside its own transaction: an event is
 * committed with the change that caused it or not at all, and so is one delivery per webhook it goes to (held while
 * the webhook is disabled). One statement for a change's events and their deliveries.
 */
export class PgEvents implements EventStore {
  constructor(
    private readonly ctx: PgContext,
    private readonly webhooks: PgWebhooks,
  ) {}

  /** Must run inside a write transaction. Returns the committed envelopes, for the post-commit notification. */
  async record(tx: Tx, drafts: EventDraft[], dedupeKey?: string): Promise<LatchkeyEvent[]> {
    const part = await this.insertion(tx, drafts, dedupeKey)
    if (!part) return []
    const statement = eventStatement([], part)
    tx.write(statement.text, statement.params)
    return part.events
  }

  /**
   * Events and their deliveries as parts of a larger statement: the CTE `e` inserts the events in order and the
   * outer statement their deliveries, or, without a webhook to deliver to, the outer statement inserts the events.
   * With `gate` (the name of a CTE of that statement), nothing is inserted unless the gate yields a row. The i-th
   * event's dedupe key is `dedupeKey#i`.
   */
  async insertion(
    tx: Tx,
    drafts: readonly EventDraft[],
    dedupeKey?: string,
    gate?: string,
  ): Promise<EventInsertion | undefined> {
    if (drafts.length === 0) return undefined
    const createdAt = this.ctx.now()
    const events = drafts.map((draft) => finaliseEvent(draft, this.ctx.newId(), createdAt))
    const deliveries: Array<{ event_id: string; webhook_id: string; enabled: boolean }> = []
    for (const event of events)
      for (const hook of await this.webhooks.matching(tx, event.workspace_id, event.event_type))
        deliveries.push({ event_id: event.event_id, webhook_id: hook.webhook_id, enabled: hook.enabled })
    const insert = `INSERT INTO events (event_id, workspace_id, event_type, device_id, action_attempt_id, created_at,
         dedupe_key, body)
       SELECT x.event_id, x.workspace_id, x.event_type, x.device_id, x.action_attempt_id, ?, x.dedupe_key, x.body
       FROM ${gate === undefined ? '' : `${gate}, `}unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
         ?::text[], ?::text[]) WITH ORDINALITY AS x(event_id, workspace_id, event_type, device_id, action_attempt_id,
         dedupe_key, body, n)
       ORDER BY x.n`
    const params = [
      createdAt,
      events.map((event) => event.event_id),
      events.map((event) => event.workspace_id),
      events.map((event) => event.event_type),
      events.map((event) => event.device_id ?? null),
      events.map((event) => event.action_attempt_id ?? null),
      events.map((_, i) => (dedupeKey === undefined ? null : `${dedupeKey}#${i}`)),
      events.map((event) => JSON.stringify(event)),
    ]
    if (deliveries.length === 0) return { ctes: [], outer: { text: insert, params }, events, wakes: false }
    this.ctx.deliveriesQueued(deliveries.length)
    return {
      ctes: [{ name: 'e', text: `${insert} RETURNING seq, event_id, workspace_id, event_type, created_at`, params }],
      outer: {
        text: `INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held,
           next_attempt_at, created_at, updated_at)
         SELECT e.seq, e.event_id, w.webhook_id, e.workspace_id, e.event_type, 'pending', NOT w.enabled,
           CASE WHEN w.enabled THEN e.created_at END, e.created_at, e.created_at
         FROM unnest(?::text[], ?::text[], ?::boolean[]) WITH ORDINALITY AS w(event_id, webhook_id, enabled, n)
           JOIN e ON e.event_id = w.event_id
         ORDER BY w.n`,
        params: [
          deliveries.map((d) => d.event_id),
          deliveries.map((d) => d.webhook_id),
          deliveries.map((d) => d.enabled),
        ],
      },
      events,
      wakes: deliveries.some((d) => d.enabled),
    }
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
