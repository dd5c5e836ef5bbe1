import type { DeliveryLogStore } from '../../app/store.js'
import type {
  AttemptLogQuery,
  AttemptOutcome,
  DeliveryLogEntry,
  DeliveryLogQuery,
  DestinationRef,
  LogPosition,
  ScheduledAttempt,
  TimeRange,
} from '../../domain/delivery-log.js'
import type { DeliveryAttempt } from '../../domain/delivery.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import type { Sql } from './database.js'
import {
  DELIVERY_ATTEMPT_COLUMNS as ATTEMPT,
  deliveryAttemptFromRow as toAttempt,
  type DeliveryAttemptRow as AttemptRow,
} from '../rows.js'

interface Part {
  text: string
  params: unknown[]
}

interface KeyRow {
  t: string
  seq: number
  sched: number
}

/** (status, will_retry) of each outcome, as the SQLite log reads them. */
const OUTCOME_KEYS: Record<AttemptOutcome, Array<[string, boolean]>> = {
  delivered: [
    ['success', false],
    ['success', true],
  ],
  retrying: [['failed', true]],
  failed: [['failed', false]],
}

const SCHEDULED = `seq AS delivery_seq, event_id, webhook_id, workspace_id, event_type, attempt_count + 1 AS attempt_number,
  next_attempt_at`

function and(parts: Array<Part | undefined>): Part {
  const present = parts.filter((part): part is Part => part !== undefined && part.text !== '')
  return { text: present.map((p) => p.text).join(' AND ') || 'true', params: present.flatMap((p) => p.params) }
}

function anyOf(column: string, values: readonly string[] | undefined): Part | undefined {
  return values === undefined ? undefined : { text: `${column} = ANY(?::text[])`, params: [[...new Set(values)]] }
}

/**
 * Rows strictly after `after` in (time, seq, scheduled) order: for one row kind a (time, seq) row comparison,
 * inclusive only where the kind alone decides (same time and seq, other kind). The SQLite log's rule, to the letter.
 */
function keyset(
  time: string,
  rowScheduled: boolean,
  dir: 'asc' | 'desc',
  after: LogPosition | undefined,
): Part | undefined {
  if (!after) return undefined
  const inclusive = dir === 'desc' ? !rowScheduled && after.scheduled : rowScheduled && !after.scheduled
  const op = `${dir === 'desc' ? '<' : '>'}${inclusive ? '=' : ''}`
  return { text: `(${time}, seq) ${op} (?, ?)`, params: [after.time, after.seq] }
}

function timeRange(range: TimeRange | undefined): Part | undefined {
  if (!range) return undefined
  const ops = [
    ['gte', '>='],
    ['gt', '>'],
    ['lte', '<='],
    ['lt', '<'],
  ] as const
  return and(
    ops.map(([key, op]) =>
      range[key] === undefined ? undefined : { text: `attempted_at ${op} ?`, params: [range[key]] },
    ),
  )
}

function outcomes(list: AttemptOutcome[] | undefined): Part | undefined {
  if (list === undefined) return undefined
  const keys = [...new Set(list)].flatMap((outcome) => OUTCOME_KEYS[outcome])
  return { text: `(${keys.map(() => '(status = ? AND will_retry = ?)').join(' OR ')})`, params: keys.flat() }
}

type Filter = Omit<AttemptLogQuery, 'limit'>

/**
 * The attempts of a filter, as one keyset-ordered SELECT of keys; undefined when a filter list is empty (nothing
 * matches). The (workspace_id | webhook_id | nothing, attempted_at, seq) indexes yield the order; topic and outcome
 * filters are checked on the way.
 */
function attemptKeys(filter: Filter, limit: number): Part | undefined {
  const lists = [filter.tenantIds, filter.eventIds, filter.destinationIds, filter.topics, filter.outcomes]
  if (lists.some((list) => list !== undefined && list.length === 0)) return undefined
  const order = filter.dir === 'desc' ? 'DESC' : 'ASC'
  const where = and([
    anyOf('workspace_id', filter.tenantIds),
    anyOf('webhook_id', filter.destinationIds),
    filter.eventIds && {
      text: 'delivery_seq IN (SELECT d.seq FROM deliveries d WHERE d.event_id = ANY(?::text[]))',
      params: [[...new Set(filter.eventIds)]],
    },
    anyOf('event_type', filter.topics),
    outcomes(filter.outcomes),
    timeRange(filter.time),
    keyset('attempted_at', false, filter.dir, filter.after),
  ])
  return {
    text: `SELECT attempted_at AS t, seq, 0 AS sched FROM delivery_attempts WHERE ${where.text}
      ORDER BY attempted_at ${order}, seq ${order} LIMIT ?`,
    params: [...where.params, limit],
  }
}

/** The read side of the delivery log on PostgreSQL: the same pages, row for row, as the SQLite log. */
export class PostgresDeliveryLog implements DeliveryLogStore {
  constructor(private readonly db: Sql) {}

  async listAttempts(query: AttemptLogQuery): Promise<DeliveryAttempt[]> {
    if (query.limit <= 0) return []
    const keys = attemptKeys(await this.narrow(query), query.limit)
    if (!keys) return []
    const rows = await this.db.query<KeyRow>(keys.text, keys.params)
    return this.attemptsBySeq(rows.map((row) => row.seq))
  }

  async getAttempt(attemptId: string): Promise<DeliveryAttempt | undefined> {
    const rows = await this.db.query<AttemptRow>(`SELECT ${ATTEMPT} FROM delivery_attempts WHERE attempt_id = ?`, [
      attemptId,
    ])
    return rows[0] && toAttempt(rows[0])
  }

  async listDeliveries(query: DeliveryLogQuery): Promise<DeliveryLogEntry[]> {
    if (query.limit <= 0) return []
    const { tenantId, destinationId, eventId, status, after, limit } = query
    const arms: Part[] = []
    if (status !== 'pending') {
      const made = attemptKeys(
        await this.narrow({
          tenantIds: [tenantId],
          destinationIds: destinationId === undefined ? undefined : [destinationId],
          eventIds: eventId === undefined ? undefined : [eventId],
          outcomes: status === undefined ? undefined : [status],
          dir: 'desc',
          after,
        }),
        limit,
      )
      if (made) arms.push(made)
    }
    if (status === undefined || status === 'pending') {
      const where = and([
        {
          text: "workspace_id = ? AND status = 'pending' AND NOT held AND next_attempt_at IS NOT NULL",
          params: [tenantId],
        },
        destinationId === undefined ? undefined : { text: 'webhook_id = ?', params: [destinationId] },
        eventId === undefined ? undefined : { text: 'event_id = ?', params: [eventId] },
        keyset('next_attempt_at', true, 'desc', after),
      ])
      arms.push({
        text: `SELECT next_attempt_at AS t, seq, 1 AS sched FROM deliveries WHERE ${where.text}
          ORDER BY next_attempt_at DESC, seq DESC LIMIT ?`,
        params: [...where.params, limit],
      })
    }
    if (arms.length === 0) return []
    const keys = await this.db.query<KeyRow>(
      `SELECT t, seq, sched FROM (${arms.map((arm) => `(${arm.text})`).join(' UNION ALL ')}) k
       ORDER BY t DESC, seq DESC, sched DESC LIMIT ?`,
      [...arms.flatMap((arm) => arm.params), limit],
    )
    const attempts = new Map(
      (await this.attemptsBySeq(keys.filter((k) => k.sched === 0).map((k) => k.seq))).map((a) => [a.seq, a]),
    )
    const scheduled = new Map(
      (await this.scheduledBySeq(keys.filter((k) => k.sched === 1).map((k) => k.seq))).map((s) => [s.delivery_seq, s]),
    )
    return keys.flatMap((key): DeliveryLogEntry[] => {
      if (key.sched === 1) {
        const found = scheduled.get(key.seq)
        return found ? [{ kind: 'scheduled', scheduled: found }] : []
      }
      const found = attempts.get(key.seq)
      return found ? [{ kind: 'attempt', attempt: found }] : []
    })
  }

  async getScheduled(deliverySeq: number): Promise<ScheduledAttempt | undefined> {
    return (await this.scheduledBySeq([deliverySeq]))[0]
  }

  async events(eventIds: string[]): Promise<Map<string, LatchkeyEvent>> {
    if (eventIds.length === 0) return new Map()
    const rows = await this.db.query<{ body: string }>('SELECT body FROM events WHERE event_id = ANY(?::text[])', [
      [...new Set(eventIds)],
    ])
    return new Map(rows.map((row) => JSON.parse(row.body) as LatchkeyEvent).map((event) => [event.event_id, event]))
  }

  async destinations(webhookIds: string[]): Promise<Map<string, DestinationRef>> {
    if (webhookIds.length === 0) return new Map()
    const rows = await this.db.query<{
      webhook_id: string
      workspace_id: string
      event_types: string
      enabled: boolean
      deleted_at: string | null
    }>(
      'SELECT webhook_id, workspace_id, event_types, enabled, deleted_at FROM webhooks WHERE webhook_id = ANY(?::text[])',
      [[...new Set(webhookIds)]],
    )
    return new Map(
      rows.map((row) => [
        row.webhook_id,
        {
          webhook_id: row.webhook_id,
          workspace_id: row.workspace_id,
          event_types: JSON.parse(row.event_types) as string[],
          enabled: row.enabled && row.deleted_at === null,
          deleted: row.deleted_at !== null,
        },
      ]),
    )
  }

  /**
   * Keeps only the destinations of the query's tenants, then lists by destination alone (a destination implies its
   * tenant), so that the destination index drives the page whatever the planner thinks of the tenant's.
   */
  private async narrow<F extends Filter>(filter: F): Promise<F> {
    if (!filter.destinationIds || filter.destinationIds.length === 0) return filter
    const tenants = filter.tenantIds && new Set(filter.tenantIds)
    const refs = await this.destinations(filter.destinationIds)
    const kept = [...refs.values()].filter((ref) => !tenants || tenants.has(ref.workspace_id))
    return { ...filter, tenantIds: undefined, destinationIds: kept.map((ref) => ref.webhook_id) }
  }

  private async attemptsBySeq(seqs: number[]): Promise<DeliveryAttempt[]> {
    if (seqs.length === 0) return []
    const rows = await this.db.query<AttemptRow>(
      `SELECT ${ATTEMPT} FROM delivery_attempts WHERE seq = ANY(?::bigint[])`,
      [seqs],
    )
    const bySeq = new Map(rows.map((row) => [row.seq, row]))
    return seqs.flatMap((seq) => {
      const row = bySeq.get(seq)
      return row ? [toAttempt(row)] : []
    })
  }

  private async scheduledBySeq(seqs: number[]): Promise<ScheduledAttempt[]> {
    if (seqs.length === 0) return []
    // The scheduled arm's conditions: a delivery attempted since the keys were read is no longer pending.
    return this.db.query<ScheduledAttempt>(
      `SELECT ${SCHEDULED} FROM deliveries
       WHERE seq = ANY(?::bigint[]) AND status = 'pending' AND NOT held AND next_attempt_at IS NOT NULL`,
      [seqs],
    )
  }
}
