import type { AttemptLogQuery, AttemptOutcome, LogPosition, TimeRange } from '../../domain/delivery-log.js'
import { placeholders } from './context.js'
import { EVENT_TYPE_KEYS } from './migrations.js'

/**
 * SQL for keyset pages of the delivery log (migration 3). A list is a merge of index ranges: one SELECT ("arm") per
 * combination of equality values the chosen index leads with, each yielding (t, seq, sched) in index order, joined
 * with UNION ALL under one ORDER BY and LIMIT. SQLite merges such arms lazily (EXPLAIN: MERGE (UNION ALL)), so a page
 * reads about `limit` index entries per arm, whatever the size of the log. No offsets anywhere.
 */

export interface Sql {
  text: string
  params: unknown[]
}

export type Dir = 'asc' | 'desc'

/**
 * Beyond this many arms a query is answered by one IN-list SELECT and a sort: correct, slower, and rare (an admin
 * naming more than seven tenants and no topic). SQLite allows 500 terms in a compound SELECT.
 */
export const MAX_ARMS = 400

/**
 * (status, will_retry) of each outcome. A success never schedules a retry, but its second pair costs one empty index
 * seek and keeps that an assumption rather than a way for rows to vanish from the lists.
 */
const OUTCOME_KEYS: Record<AttemptOutcome, Array<[string, number]>> = {
  delivered: [
    ['success', 0],
    ['success', 1],
  ],
  retrying: [['failed', 1]],
  failed: [['failed', 0]],
}

const ALL_OUTCOMES: AttemptOutcome[] = ['delivered', 'retrying', 'failed']

function outcomeKeys(outcomes: AttemptOutcome[] | undefined): Array<[string, number]> {
  return [...new Set(outcomes ?? ALL_OUTCOMES)].flatMap((outcome) => OUTCOME_KEYS[outcome])
}

/**
 * How the listing indexes key an event type (migration 5's `event_type_key`): a small integer for the types that
 * migration knows, the name itself for any other.
 */
export type TopicKey = number | string

const KEY_OF_TOPIC = new Map(EVENT_TYPE_KEYS.map((type, i) => [type, i + 1]))

export function topicKey(topic: string): TopicKey {
  return KEY_OF_TOPIC.get(topic) ?? topic
}

/** What the attempt arms filter on, with destinations already narrowed to the caller's tenants. */
export type ArmFilter = Omit<AttemptLogQuery, 'limit'>

function and(parts: Array<Sql | undefined>): Sql {
  const present = parts.filter((part): part is Sql => part !== undefined && part.text !== '')
  return { text: present.map((part) => part.text).join(' AND '), params: present.flatMap((part) => part.params) }
}

function inList(column: string, values: readonly unknown[] | undefined): Sql | undefined {
  if (values === undefined) return undefined
  return { text: `${column} IN (${placeholders(values.length)})`, params: [...values] }
}

/**
 * Rows strictly after `after` in (time, seq, sched) order. For a row kind `rowScheduled` that order reduces to a
 * (time, seq) row-value comparison, inclusive only where the third key alone decides (same time and seq, other kind).
 */
export function keyset(
  time: string,
  seq: string,
  rowScheduled: boolean,
  dir: Dir,
  after: LogPosition | undefined,
): Sql | undefined {
  if (!after) return undefined
  const inclusive = dir === 'desc' ? !rowScheduled && after.scheduled : rowScheduled && !after.scheduled
  const op = `${dir === 'desc' ? '<' : '>'}${inclusive ? '=' : ''}`
  return { text: `(${time}, ${seq}) ${op} (?, ?)`, params: [after.time, after.seq] }
}

function timeRange(column: string, range: TimeRange | undefined): Sql | undefined {
  if (!range) return undefined
  const ops = [
    ['gte', '>='],
    ['gt', '>'],
    ['lte', '<='],
    ['lt', '<'],
  ] as const
  return and(
    ops.map(([key, op]) =>
      range[key] === undefined ? undefined : { text: `${column} ${op} ?`, params: [range[key]] },
    ),
  )
}

function outcomeResidual(outcomes: AttemptOutcome[] | undefined): Sql | undefined {
  if (outcomes === undefined) return undefined
  const keys = outcomeKeys(outcomes)
  return { text: `(${keys.map(() => '(status = ? AND will_retry = ?)').join(' OR ')})`, params: keys.flat() }
}

/**
 * The index a listing is driven by. All three lead with what the filter pins (a destination, which implies its
 * tenant; a tenant; or nothing), then event type (its key), status and will_retry, then time: every combination of
 * filters is a set of exact index ranges, with no per-row check.
 */
export interface Driver {
  index: 'delivery_attempts_by_destination' | 'delivery_attempts_by_tenant' | 'delivery_attempts_by_topic'
  column: 'webhook_id' | 'workspace_id' | undefined
  values: Array<string | undefined>
}

function driver(filter: ArmFilter): Driver {
  if (filter.destinationIds)
    return { index: 'delivery_attempts_by_destination', column: 'webhook_id', values: filter.destinationIds }
  if (filter.tenantIds)
    return { index: 'delivery_attempts_by_tenant', column: 'workspace_id', values: filter.tenantIds }
  return { index: 'delivery_attempts_by_topic', column: undefined, values: [undefined] }
}

/**
 * The keys of the event types present under one value of the driver's leading column, by a loose index scan (one
 * seek per type): a listing without a topic filter merges the ranges of the types that exist, whatever they are.
 */
export function topicsSql(drive: Driver): string {
  const pin = drive.column ? `${drive.column} = @value AND ` : ''
  const min = (after: string) =>
    `SELECT min(event_type_key) FROM delivery_attempts INDEXED BY ${drive.index} WHERE ${pin}${after}`
  return `WITH RECURSIVE topic(key) AS (SELECT (${min('1')}) UNION ALL SELECT (${min('event_type_key > topic.key')}) FROM topic WHERE key IS NOT NULL)
    SELECT key FROM topic WHERE key IS NOT NULL`
}

const ATTEMPT_KEY = 'attempted_at AS t, seq, 0 AS sched FROM delivery_attempts'

/** Attempts of the given events: a handful of rows reached through the events' own deliveries, then sorted. */
function eventArm(filter: ArmFilter & { eventIds: string[] }): Sql {
  const deliveries = and([
    {
      text: `d.event_seq IN (SELECT e.seq FROM events e WHERE e.event_id IN (${placeholders(filter.eventIds.length)}))`,
      params: filter.eventIds,
    },
    inList('d.workspace_id', filter.tenantIds),
    inList('d.webhook_id', filter.destinationIds),
    inList('d.event_type', filter.topics),
  ])
  const where = and([
    { text: `delivery_seq IN (SELECT d.seq FROM deliveries d WHERE ${deliveries.text})`, params: deliveries.params },
    outcomeResidual(filter.outcomes),
    timeRange('attempted_at', filter.time),
    keyset('attempted_at', 'seq', false, filter.dir, filter.after),
  ])
  return {
    text: `SELECT ${ATTEMPT_KEY} INDEXED BY delivery_attempts_by_delivery WHERE ${where.text}`,
    params: where.params,
  }
}

/** One SELECT with IN lists, for the rare query with too many ranges to merge: SQLite picks an index and sorts. */
function fallbackArm(filter: ArmFilter, range: Array<Sql | undefined>): Sql {
  const where = and([
    inList('workspace_id', filter.tenantIds),
    inList('webhook_id', filter.destinationIds),
    inList('event_type_key', filter.topics?.map(topicKey)),
    outcomeResidual(filter.outcomes),
    ...range,
  ])
  return { text: `SELECT ${ATTEMPT_KEY}${where.text ? ` WHERE ${where.text}` : ''}`, params: where.params }
}

/**
 * The arms selecting attempt keys for `filter`; none when a filter list is empty. `topicsOf` lists the keys of the
 * event types present under a driver value (topicsSql), asked only when the filter names no topic.
 */
export function attemptArms(
  filter: ArmFilter,
  topicsOf: (drive: Driver, value: string | undefined) => TopicKey[],
): Sql[] {
  const lists = [filter.tenantIds, filter.eventIds, filter.destinationIds, filter.topics, filter.outcomes]
  if (lists.some((list) => list !== undefined && list.length === 0)) return []
  if (filter.eventIds) return [eventArm({ ...filter, eventIds: filter.eventIds })]
  const drive = driver(filter)
  const keys = outcomeKeys(filter.outcomes)
  const range = [timeRange('attempted_at', filter.time), keyset('attempted_at', 'seq', false, filter.dir, filter.after)]
  const pins = drive.values.flatMap((value) =>
    (filter.topics?.map(topicKey) ?? topicsOf(drive, value)).flatMap((topic) =>
      keys.map((key) => [value, topic, ...key]),
    ),
  )
  if (pins.length > MAX_ARMS) return [fallbackArm(filter, range)]
  const equalities = [...(drive.column ? [drive.column] : []), 'event_type_key', 'status', 'will_retry']
    .map((column) => `${column} = ?`)
    .join(' AND ')
  return pins.map((pin) => {
    const where = and([{ text: equalities, params: drive.column ? pin : pin.slice(1) }, ...range])
    return { text: `SELECT ${ATTEMPT_KEY} INDEXED BY ${drive.index} WHERE ${where.text}`, params: where.params }
  })
}

/** The v1 dialect's pending rows of one tenant: deliveries whose next automatic attempt is scheduled. */
export function scheduledArm(
  tenantId: string,
  destinationId: string | undefined,
  eventId: string | undefined,
  after: LogPosition | undefined,
): Sql {
  const where = and([
    {
      text: "workspace_id = ? AND status = 'pending' AND held = 0 AND next_attempt_at IS NOT NULL",
      params: [tenantId],
    },
    destinationId === undefined ? undefined : { text: 'webhook_id = ?', params: [destinationId] },
    eventId === undefined ? undefined : { text: 'event_id = ?', params: [eventId] },
    keyset('next_attempt_at', 'seq', true, 'desc', after),
  ])
  return {
    text: `SELECT next_attempt_at AS t, seq, 1 AS sched FROM deliveries INDEXED BY deliveries_scheduled WHERE ${where.text}`,
    params: where.params,
  }
}

/** Merges the arms into one page of keys. */
export function page(arms: Sql[], dir: Dir, limit: number): Sql {
  const order = dir === 'desc' ? 'DESC' : 'ASC'
  return {
    text: `${arms.map((arm) => arm.text).join(' UNION ALL ')} ORDER BY t ${order}, seq ${order}, sched ${order} LIMIT ?`,
    params: [...arms.flatMap((arm) => arm.params), limit],
  }
}
