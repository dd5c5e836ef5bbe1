import type { Statement } from 'better-sqlite3'
import type { DeliveryLogStore } from '../../app/store.js'
import type {
  AttemptLogQuery,
  DeliveryLogEntry,
  DeliveryLogQuery,
  DestinationRef,
  ScheduledAttempt,
} from '../../domain/delivery-log.js'
import type { DeliveryAttempt } from '../../domain/delivery.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import { placeholders } from './context.js'
import type { Db } from './database.js'
import {
  DELIVERY_ATTEMPT_COLUMNS as ATTEMPT,
  deliveryAttemptFromRow as toAttempt,
  type DeliveryAttemptRow as AttemptRow,
} from '../rows.js'
import {
  attemptArms,
  page,
  scheduledArm,
  topicsSql,
  type ArmFilter,
  type Driver,
  type Sql,
  type TopicKey,
} from './delivery-log-sql.js'

interface KeyRow {
  t: string
  seq: number
  sched: number
}

const SCHEDULED = `seq AS delivery_seq, event_id, webhook_id, workspace_id, event_type, attempt_count + 1 AS attempt_number, next_attempt_at`

/** Statements are cached by text: a page's SQL depends only on the shape of its filters. */
const STATEMENT_CACHE = 256

/** The read side of the delivery log (migration 3 indexes; SQL in delivery-log-sql.ts). Reads never wait for writes. */
export class SqliteDeliveryLog implements DeliveryLogStore {
  private readonly cache = new Map<string, Statement>()

  constructor(private readonly db: Db) {}

  async listAttempts(query: AttemptLogQuery): Promise<DeliveryAttempt[]> {
    const filter = this.narrow(query)
    const keys = this.keys(attemptArms(filter, this.topicsOf), query.dir, query.limit)
    return this.attemptsBySeq(keys.map((key) => key.seq))
  }

  async getAttempt(attemptId: string): Promise<DeliveryAttempt | undefined> {
    const row = this.statement(`SELECT ${ATTEMPT} FROM delivery_attempts WHERE attempt_id = ?`).get(attemptId) as
      AttemptRow | undefined
    return row && toAttempt(row)
  }

  async listDeliveries(query: DeliveryLogQuery): Promise<DeliveryLogEntry[]> {
    const keys = this.keys(this.deliveryArms(query), 'desc', query.limit)
    const attempts = new Map(
      (await this.attemptsBySeq(keys.filter((k) => k.sched === 0).map((k) => k.seq))).map((a) => [a.seq, a]),
    )
    const scheduled = new Map(
      this.scheduledBySeq(keys.filter((k) => k.sched === 1).map((k) => k.seq)).map((s) => [s.delivery_seq, s]),
    )
    return keys.flatMap((key): DeliveryLogEntry[] => {
      const found = key.sched === 1 ? scheduled.get(key.seq) : attempts.get(key.seq)
      if (!found) return []
      return key.sched === 1
        ? [{ kind: 'scheduled', scheduled: found as ScheduledAttempt }]
        : [{ kind: 'attempt', attempt: found as DeliveryAttempt }]
    })
  }

  async getScheduled(deliverySeq: number): Promise<ScheduledAttempt | undefined> {
    return this.scheduledBySeq([deliverySeq])[0]
  }

  async events(eventIds: string[]): Promise<Map<string, LatchkeyEvent>> {
    if (eventIds.length === 0) return new Map()
    const unique = [...new Set(eventIds)]
    const rows = this.statement(`SELECT body FROM events WHERE event_id IN (${placeholders(unique.length)})`).all(
      ...unique,
    ) as Array<{ body: string }>
    return new Map(rows.map((row) => JSON.parse(row.body) as LatchkeyEvent).map((event) => [event.event_id, event]))
  }

  async destinations(webhookIds: string[]): Promise<Map<string, DestinationRef>> {
    return new Map(this.destinationRows(webhookIds).map((ref) => [ref.webhook_id, ref]))
  }

  /** EXPLAIN QUERY PLAN of a listing, one line per step: what docs/performance.md shows and the tests check. */
  explain(query: AttemptLogQuery | DeliveryLogQuery): string[] {
    const sql =
      'dir' in query
        ? page(attemptArms(this.narrow(query), this.topicsOf), query.dir, query.limit)
        : page(this.deliveryArms(query), 'desc', query.limit)
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${sql.text}`).all(...sql.params) as Array<{ detail: string }>
    return rows.map((row) => row.detail)
  }

  /** The keys of the event types present under one driver value: a loose index scan, one seek per type. */
  private readonly topicsOf = (drive: Driver, value: string | undefined): TopicKey[] => {
    const statement = this.statement(topicsSql(drive))
    const rows = (value === undefined ? statement.all() : statement.all({ value })) as Array<{ key: TopicKey }>
    return rows.map((row) => row.key)
  }

  /** Keeps only the destinations of the query's tenants, so that no index range of another tenant is ever scanned. */
  private narrow(query: AttemptLogQuery): ArmFilter {
    if (!query.destinationIds) return query
    const tenants = query.tenantIds && new Set(query.tenantIds)
    const refs = this.destinationRows(query.destinationIds)
    return {
      ...query,
      destinationIds: refs.filter((ref) => !tenants || tenants.has(ref.workspace_id)).map((ref) => ref.webhook_id),
    }
  }

  /** Attempts made and, unless a status of an attempt made is asked for, attempts scheduled. */
  private deliveryArms(query: DeliveryLogQuery): Sql[] {
    const { tenantId, destinationId, eventId, status, after } = query
    const arms: Sql[] = []
    if (status !== 'pending') {
      const filter = this.narrow({
        tenantIds: [tenantId],
        destinationIds: destinationId === undefined ? undefined : [destinationId],
        eventIds: eventId === undefined ? undefined : [eventId],
        outcomes: status === undefined ? undefined : [status],
        dir: 'desc',
        after,
        limit: query.limit,
      })
      arms.push(...attemptArms(filter, this.topicsOf))
    }
    if (status === undefined || status === 'pending') arms.push(scheduledArm(tenantId, destinationId, eventId, after))
    return arms
  }

  private keys(arms: Sql[], dir: 'asc' | 'desc', limit: number): KeyRow[] {
    if (arms.length === 0 || limit <= 0) return []
    const sql = page(arms, dir, limit)
    return this.statement(sql.text).all(...sql.params) as KeyRow[]
  }

  private async attemptsBySeq(seqs: number[]): Promise<DeliveryAttempt[]> {
    if (seqs.length === 0) return []
    const rows = this.statement(
      `SELECT ${ATTEMPT} FROM delivery_attempts WHERE seq IN (${placeholders(seqs.length)})`,
    ).all(...seqs) as AttemptRow[]
    const bySeq = new Map(rows.map((row) => [row.seq, row]))
    return seqs.flatMap((seq) => {
      const row = bySeq.get(seq)
      return row ? [toAttempt(row)] : []
    })
  }

  private scheduledBySeq(seqs: number[]): ScheduledAttempt[] {
    if (seqs.length === 0) return []
    // The same conditions as the scheduled arm: a delivery attempted since the keys were read is no longer pending.
    return this.statement(
      `SELECT ${SCHEDULED} FROM deliveries
       WHERE seq IN (${placeholders(seqs.length)}) AND status = 'pending' AND held = 0 AND next_attempt_at IS NOT NULL`,
    ).all(...seqs) as ScheduledAttempt[]
  }

  private destinationRows(webhookIds: string[]): DestinationRef[] {
    if (webhookIds.length === 0) return []
    const unique = [...new Set(webhookIds)]
    const rows = this.statement(
      `SELECT webhook_id, workspace_id, event_types, enabled, deleted_at FROM webhooks WHERE webhook_id IN (${placeholders(unique.length)})`,
    ).all(...unique) as Array<{
      webhook_id: string
      workspace_id: string
      event_types: string
      enabled: number
      deleted_at: string | null
    }>
    return rows.map((row) => ({
      webhook_id: row.webhook_id,
      workspace_id: row.workspace_id,
      event_types: JSON.parse(row.event_types) as string[],
      enabled: row.enabled === 1 && row.deleted_at === null,
      deleted: row.deleted_at !== null,
    }))
  }

  private statement(text: string): Statement {
    let statement = this.cache.get(text)
    if (statement) {
      // Most recently used last: the first key is the one to evict.
      this.cache.delete(text)
    } else {
      statement = this.db.prepare(text)
      if (this.cache.size >= STATEMENT_CACHE) this.cache.delete(this.cache.keys().next().value as string)
    }
    this.cache.set(text, statement)
    return statement
  }
}
