import pg from 'pg'
import pgUtils from 'pg/lib/utils.js'
import { StoreUnavailableError } from '../errors.js'
import { MIGRATIONS } from './migrations.js'

/** Something to run SQL on: the pool (reads) or the writer's open transaction. `?` placeholders, in order. */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>
  /** Rows changed by an INSERT/UPDATE/DELETE. */
  exec(text: string, params?: unknown[]): Promise<number>
}

/** A write transaction: also takes writes whose outcome nobody reads, sent with the next statement that is read. */
export interface Tx extends Sql {
  write(text: string, params?: unknown[]): void
  /**
   * A write that takes effect only if the statement yields a row (its parts are gated on a condition, such as a
   * row still at the version the job decided on), sent like any write, without waiting for it. If it yields none,
   * it wrote nothing: `missed` is called, the job's outcome is dropped, and the job runs again (`rerun`) in a later
   * transaction, after the jobs already on the connection. All of the job's writes must be behind the same gate.
   */
  writeIfCurrent(text: string, params: unknown[], missed: () => void): void
  /** The job runs again after a write of its own missed (writeIfCurrent): it must decide on what it reads. */
  readonly rerun: boolean
}

/** Advisory lock key of the migrations ("latchkey" in ASCII). */
const MIGRATION_LOCK = 0x6c617463686b6579n

/** Errors that mean "the database is not there" rather than "this statement is wrong". */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
])

export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true
  return /Connection terminated|connection error|Connection refused|timeout exceeded when trying to connect|Client was closed|terminating connection/i.test(
    error.message,
  )
}

/** What every API surface answers while the database is away: 503 in its own error shape. */
export function unavailable(cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError('The database is unavailable; try again shortly', { cause })
}

/** A statement with `?` placeholders and their values. */
export interface SqlStatement {
  text: string
  params: unknown[]
}

/**
 * Data-modifying statements (INSERT, UPDATE, DELETE, without a WITH of their own) as one statement: each a CTE of
 * the last, which may also be a SELECT. Each part runs once, all on one snapshot, so no two of them may touch one
 * row. One statement instead of several is one Bind/Execute for both ends to handle, not several.
 */
export function combined(parts: readonly SqlStatement[]): SqlStatement | undefined {
  if (parts.length <= 1) return parts[0]
  return withCtes(
    parts.slice(0, -1).map((part, i) => ({ name: `w${i}`, ...part })),
    parts[parts.length - 1] as SqlStatement,
  )
}

/** A named part of a statement, `name AS (text)`, which the parts after it may read by its name. */
export interface Cte extends SqlStatement {
  name: string
}

/** `WITH a AS (…), b AS (…) outer`, the parameters in the order of the text; without CTEs, `outer` itself. */
export function withCtes(ctes: readonly Cte[], outer: SqlStatement): SqlStatement {
  if (ctes.length === 0) return outer
  return {
    text: `WITH ${ctes.map((cte) => `${cte.name} AS (${cte.text})`).join(', ')} ${outer.text}`,
    params: [...ctes.flatMap((cte) => cte.params), ...outer.params],
  }
}

/** `?` → `$1, $2, …`, once per statement text; each text is a named (prepared once per connection) statement. */
const texts = new Map<string, { text: string; name: string }>()
function prepared(text: string): { text: string; name: string } {
  let found = texts.get(text)
  if (!found) {
    let n = 0
    found = { text: text.replace(/\?/g, () => `$${++n}`), name: `lk${texts.size}` }
    if (texts.size < 4096) texts.set(text, found)
    else found.name = ''
  }
  return found
}

async function run(client: pg.Pool | pg.PoolClient, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const { text: sql, name } = prepared(text)
  return name ? client.query({ name, text: sql, values: params }) : client.query(sql, params)
}

interface Corkable {
  cork(): void
  uncork(): void
}

const INT8 = 20
/** bigint (the seq columns, counts) as a JS number: seqs stay far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

export interface PgDbOptions {
  url: string
  poolMax: number
  onError?: (error: unknown, context: string) => void
}

/**
 * The pool, its health, and the writer: one connection that commits every write requested during one event-loop
 * turn in one transaction (group commit, as the SQLite store does), so that a row's seq order is its commit order,
 * which the outbox tail relies on.
 */
export class PgDb implements Sql {
  readonly pool: pg.Pool
  /** The writer's one connection, in pg's pipeline mode (PgWriteQueue). */
  readonly writerPool: pg.Pool
  readonly writes: PgWriteQueue
  private healthy = true
  private probe: NodeJS.Timeout | undefined
  private closed = false
  private readonly restoredListeners: Array<() => void> = []

  constructor(private readonly options: PgDbOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: Math.max(1, options.poolMax - 1),
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      types,
    })
    // Pipeline mode: the statements of a round trip are written at once, each answered in turn.
    this.writerPool = new pg.Pool({
      connectionString: options.url,
      max: 1,
      connectionTimeoutMillis: 5_000,
      types,
      pipeline: true,
      // The writer's statements look rows up by key: one generic plan each, not a plan per execution.
      options: '-c plan_cache_mode=force_generic_plan',
    })
    // An idle connection dropped by the server must not crash the process.
    this.pool.on('error', (error) => this.failed(error))
    this.writerPool.on('error', (error) => this.failed(error))
    this.writes = new PgWriteQueue(this)
  }

  /** Up, as far as the last statement and the probe know: what /readyz reports. */
  get ready(): boolean {
    return this.healthy && !this.closed
  }

  onRestored(listener: () => void): void {
    this.restoredListeners.push(listener)
  }

  async query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.guard(() => run(this.pool, text, params))).rows as R[]
  }

  async exec(text: string, params?: unknown[]): Promise<number> {
    return (await this.guard(() => run(this.pool, text, params))).rowCount ?? 0
  }

  /** Runs `fn`, turning a lost database into StoreUnavailableError and starting the probe that notices its return. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (isConnectionError(error)) {
        this.failed(error)
        throw unavailable(error)
      }
      throw error
    }
  }

  failed(error: unknown): void {
    if (!isConnectionError(error) && !(error instanceof StoreUnavailableError)) return
    if (this.healthy) this.options.onError?.(error, 'database unavailable')
    this.healthy = false
    this.startProbe()
  }

  private startProbe(): void {
    if (this.probe || this.closed) return
    this.probe = setInterval(() => {
      this.pool.query('SELECT 1').then(
        () => {
          if (this.healthy || this.closed) return
          this.healthy = true
          clearInterval(this.probe)
          this.probe = undefined
          for (const listener of this.restoredListeners) listener()
        },
        () => {},
      )
    }, 250)
    this.probe.unref()
  }

  /** Brings the schema up to date under an advisory lock; idempotent. */
  async migrate(migrations: readonly string[] = MIGRATIONS): Promise<void> {
    const client = await this.pool.connect()
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()])
      try {
        await client.query('CREATE TABLE IF NOT EXISTS latchkey_schema (version integer NOT NULL)')
        const rows = (await client.query<{ version: number }>('SELECT version FROM latchkey_schema')).rows
        let current = rows[0]?.version ?? 0
        if (rows.length === 0) await client.query('INSERT INTO latchkey_schema (version) VALUES (0)')
        if (current > migrations.length) {
          throw new Error(`database schema version ${current} is newer than this latchkey (${migrations.length})`)
        }
        for (; current < migrations.length; current++) {
          await client.query('BEGIN')
          try {
            await client.query(migrations[current] as string)
            await client.query('UPDATE latchkey_schema SET version = $1', [current + 1])
            await client.query('COMMIT')
          } catch (error) {
            await client.query('ROLLBACK')
            throw error
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()])
      }
    } finally {
      client.release()
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.probe) clearInterval(this.probe)
    await this.writes.close()
    await Promise.all([this.writerPool.end(), this.pool.end()])
  }
}

/**
 * What a write job touches, for running it beside the other jobs of its batch (WriterTx). A key names a row or a
 * set of rows (`attempt:ID`, `device:ID`); two jobs without a key in common must not touch what the other writes.
 * A job without keys runs alone, after every keyed job of its batch: requests that were queued together are
 * concurrent, so any order of them is one they could have had.
 */
export interface WriteJobOptions {
  /** Commit when the current task ends rather than with the loop turn (WriteOptions.urgent). */
  urgent?: boolean | undefined
  /** What the job reads and writes: it starts once the jobs before it that hold one of these have finished. */
  keys?: readonly string[] | undefined
  /**
   * What the job only writes, without reading it first (`tx.write`, `tx.writeIfCurrent`): it runs beside the jobs
   * before it that hold one of these, but its writes enter the transaction after theirs. Jobs after it that hold
   * the key wait for it.
   */
  writesAfter?: readonly string[] | undefined
}

interface Job {
  fn: (tx: Tx) => Promise<unknown>
  options: WriteJobOptions
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
  /** A write of its own missed in an earlier run (Tx.writeIfCurrent). */
  rerun?: boolean
}

/** A job of a batch as the batch runs it: what it waits for, what waits for it, its reads in flight. */
interface Slot {
  job: Job
  /** Jobs before it that must finish before it starts (a key in common, or a job without keys). */
  blockers: number
  /** Jobs before it that must finish before its writes go (`writesAfter`). */
  holders: number
  /** Its writes held back meanwhile, in order. */
  held: Statement[]
  /** Jobs waiting for it to finish: to start, or to let their writes go. */
  next: Array<{ slot: Slot; writes: boolean }>
  reads: number
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown }
  /** Finished, and its writes are in the transaction. */
  done: boolean
  /** A write of its own yielded no row (Tx.writeIfCurrent): it wrote nothing, and runs again. */
  missed: boolean
}

interface Statement {
  /** `?` placeholders, as the jobs write it. */
  text: string
  params?: unknown[] | undefined
  /** A read: whoever waits for its rows. */
  read?: { slot: Slot; resolve: (result: pg.QueryResult) => void; reject: (error: unknown) => void }
  /** A write that took effect only if it yielded a row (Tx.writeIfCurrent). */
  gate?: { slot: Slot; missed: () => void }
}

/** pg.Query's own handling of an error (not in pg's types). */
const queryHandleError = (
  pg.Query.prototype as unknown as {
    handleError(this: pg.Query, error: Error, connection: pg.Connection): void
  }
).handleError

/**
 * The statements of one round trip as one query: each Parsed once per connection (named, as {@link prepared} names
 * it), then Bound, Described and Executed, and one Sync after the last. The server answers them in order and, at the
 * Sync, sends everything in one write, where a Sync per statement (how pg pipelines queries) costs a write and a
 * wakeup per statement at both ends. A statement that fails makes the server skip the rest up to the Sync: the
 * round fails with that error. pg.Query already collects the results of several statements, one per
 * CommandComplete; a subclass, because pg accepts no other kind of query on a pipelined connection.
 */
class Round extends pg.Query {
  /** Statements of a connection that a failed round may or may not have parsed: closed before they are parsed again. */
  private static readonly unsure = new WeakMap<pg.Connection, Set<string>>()

  static submit(client: pg.PoolClient, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    return new Promise((resolve, reject) => {
      const round = new Round(statements, (error, results) => {
        if (error) reject(error)
        else
          resolve(
            statements.length === 1 ? [results as unknown as pg.QueryResult] : (results as unknown as pg.QueryResult[]),
          )
      })
      client.query(round)
    })
  }

  /** The statements' texts as sent (`$n` placeholders), for whoever looks at the queries a client was given. */
  get texts(): string[] {
    return this.statements.map(({ text }) => prepared(text).text)
  }

  /** The statements this round parsed, in order. */
  private readonly parsedHere: string[] = []

  private constructor(
    private readonly statements: readonly Statement[],
    callback: (error: Error | undefined, results: unknown) => void,
  ) {
    super('', callback)
    this.submit = (connection) => this.write(connection)
  }

  private write(connection: pg.Connection): void {
    const parsed = (connection as unknown as { parsedStatements: Record<string, string> }).parsedStatements
    const unsure = Round.unsure.get(connection)
    for (const { text, params } of this.statements) {
      const { text: sql, name } = prepared(text)
      if (!name || parsed[name] === undefined) {
        if (name && unsure?.delete(name)) connection.close({ type: 'S', name }, true)
        connection.parse({ text: sql, name, types: [] }, true)
        if (name) {
          parsed[name] = sql
          this.parsedHere.push(name)
        }
      }
      connection.bind(
        { statement: name, values: (params ?? []) as pg.BindConfig['values'], valueMapper: pgUtils.prepareValue },
        true,
      )
      connection.describe({ type: 'P', name: '' }, true)
      connection.execute({ portal: '' }, true)
    }
    connection.sync()
  }

  /** The round failed: the statements it parsed may not exist on the connection. */
  handleError(error: Error, connection: pg.Connection): void {
    const parsed = (connection as unknown as { parsedStatements: Record<string, string> }).parsedStatements
    let unsure = Round.unsure.get(connection)
    if (!unsure) Round.unsure.set(connection, (unsure = new Set()))
    for (const name of this.parsedHere) {
      delete parsed[name]
      unsure.add(name)
    }
    queryHandleError.call(this, error, connection)
  }
}

/**
 * The writer's transaction over the jobs of one batch. Statements travel as named prepared statements (parsed once
 * per connection, on a generic plan), those of one round trip written together in pipeline mode. The jobs run side
 * by side: each runs until it waits for a read, and when every started job waits (or has finished), the statements
 * queued meanwhile go in one round trip, BEGIN with the first round and COMMIT with the last. Writes whose result is not read wait for the next round. A batch of jobs that each load a row and write its
 * consequences costs two round trips however many jobs it holds; a job that shares a key with an earlier one starts
 * once that one has finished, so it reads what that one wrote, as if the jobs ran one after another.
 */
class WriterTx {
  private pending: Statement[] = [{ text: 'BEGIN' }]
  /** Started jobs neither finished nor waiting for a read. */
  private running = 0
  private inFlight = false
  private rounds = 0
  private left = 0
  private finished: (() => void) | undefined
  private readonly slots: Slot[] = []
  private readonly last = new Map<string, Slot>()
  /** The keyed jobs not yet finished; the jobs without keys, which run one by one after them. */
  private keyedLeft = 0
  private readonly alone: Slot[] = []
  private aloneNext = 0

  constructor(
    private readonly client: pg.PoolClient,
    /** The batch's jobs, which admit() adds to. */
    private readonly jobs: Job[],
    /** Round trips after which jobs are no longer admitted (0: none). */
    private readonly admitRounds = 0,
  ) {}

  /** Runs the jobs and resolves when every one has finished; their outcomes are on the slots. */
  run(): Promise<Slot[]> {
    return new Promise<Slot[]>((resolve) => {
      this.finished = () => resolve(this.slots)
      this.add(this.jobs)
    })
  }

  /**
   * A job queued while the batch runs joins it, to be sent with its next round trip, as long as the batch is in
   * its first rounds and the job can start at once: the job waits for one round trip instead of for the whole
   * batch. One that would wait for a job of the batch holding its key would make the batch longer for every job in
   * it: it waits for the next batch.
   */
  admit(job: Job): boolean {
    const { keys } = job.options
    if (!keys || this.aloneNext > 0 || this.rounds > this.admitRounds || this.left === 0) return false
    if (keys.some((key) => this.last.get(key)?.done === false)) return false
    this.jobs.push(job)
    this.add([job])
    return true
  }

  private add(jobs: readonly Job[]): void {
    const slots = jobs.map((job) => this.plan(job))
    this.left += slots.length
    // Counted as running until all have started, so that the first read does not leave alone.
    this.running++
    for (const slot of slots) if (slot.blockers === 0) this.start(slot)
    this.startAlone()
    this.running--
    this.flushIfIdle()
  }

  /**
   * What a job waits for: the last earlier job of each of its keys. A job without keys waits for every keyed job
   * of the batch and for the job without keys before it (startAlone).
   */
  private plan(job: Job): Slot {
    const after = (slot: Slot, before: Slot | undefined, writes = false) => {
      if (!before || before.done || before.next.some((n) => n.slot === slot)) return
      before.next.push({ slot, writes })
      if (writes) slot.holders++
      else slot.blockers++
    }
    const slot: Slot = { job, blockers: 0, holders: 0, held: [], next: [], reads: 0, done: false, missed: false }
    const { keys, writesAfter } = job.options
    if (keys) {
      this.keyedLeft++
      for (const key of keys) {
        after(slot, this.last.get(key))
        this.last.set(key, slot)
      }
      for (const key of writesAfter ?? []) {
        after(slot, this.last.get(key), true)
        this.last.set(key, slot)
      }
    } else {
      slot.blockers = 1
      this.alone.push(slot)
    }
    this.slots.push(slot)
    return slot
  }

  /** The next job without keys, once every keyed job and the one without keys before it have finished. */
  private startAlone(): void {
    if (this.keyedLeft > 0 || this.aloneNext >= this.alone.length) return
    if (this.aloneNext > 0 && !this.alone[this.aloneNext - 1]?.done) return
    const slot = this.alone[this.aloneNext++] as Slot
    slot.blockers = 0
    this.start(slot)
  }

  private start(slot: Slot): void {
    this.running++
    const queue = (statement: Statement) => {
      if (slot.holders > 0) slot.held.push(statement)
      else this.pending.push(statement)
    }
    const tx: Tx = {
      write: (text, params) => queue({ text, params }),
      writeIfCurrent: (text, params, missed) => queue({ text, params, gate: { slot, missed } }),
      query: async (text, params) => (await this.read(slot, { text, params })).rows as never[],
      exec: async (text, params) => (await this.read(slot, { text, params })).rowCount ?? 0,
      rerun: slot.job.rerun ?? false,
    }
    let result: Promise<unknown>
    try {
      result = slot.job.fn(tx)
    } catch (error) {
      result = Promise.reject(error)
    }
    result.then(
      (value) => this.finish(slot, { ok: true, value }),
      (error: unknown) => this.finish(slot, { ok: false, error }),
    )
  }

  private finish(slot: Slot, outcome: NonNullable<Slot['outcome']>): void {
    slot.outcome = outcome
    this.release(slot)
    this.running--
    this.flushIfIdle()
  }

  /** A job whose writes are in: the jobs that waited for it start, or let their writes go. */
  private release(slot: Slot): void {
    if (!slot.outcome || slot.holders > 0 || slot.done) return
    slot.done = true
    this.left--
    for (const { slot: next, writes } of slot.next) {
      if (!writes) {
        if (--next.blockers === 0) this.start(next)
      } else if (--next.holders === 0) {
        this.pending.push(...next.held)
        next.held = []
        this.release(next)
      }
    }
    if (slot.job.options.keys) this.keyedLeft--
    this.startAlone()
    if (this.left === 0) this.finished?.()
  }

  private read(slot: Slot, statement: Statement): Promise<pg.QueryResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...statement, read: { slot, resolve, reject } })
      if (slot.reads++ === 0) this.running--
      this.flushIfIdle()
    })
  }

  /** Every started job waits for a read: send what is queued. */
  private flushIfIdle(): void {
    if (this.running > 0 || this.inFlight || !this.pending.some((statement) => statement.read)) return
    const batch = this.pending
    this.pending = []
    this.inFlight = true
    this.rounds++
    const settle = (each: (read: NonNullable<Statement['read']>, i: number) => void) => {
      this.inFlight = false
      // Counted as running before any of them resumes, so that none is sent alone.
      batch.forEach((statement) => {
        const read = statement.read
        if (read && --read.slot.reads === 0) this.running++
      })
      batch.forEach((statement, i) => statement.read && each(statement.read, i))
    }
    this.send(batch).then(
      (results) => {
        this.checkGates(batch, results)
        settle((read, i) => read.resolve(results[i] as pg.QueryResult))
      },
      (error: unknown) => settle((read) => read.reject(error)),
    )
  }

  /**
   * One round trip: every statement written at once (pipeline mode), their answers awaited together. The first
   * statement that fails fails the round, as a multi-statement query would: the server skips the ones after it, and a
   * write nobody reads must not fail unseen. The statements go as one {@link Round}, behind one Sync, so the server
   * answers the round in one write. With `commit`, a COMMIT follows as a query of its own, so that it ends the
   * transaction (as ROLLBACK, if the round failed) before anything written after it; its answer comes last.
   */
  private async send(statements: readonly Statement[], commit = false): Promise<pg.QueryResult[]> {
    const stream = (this.client as unknown as { connection: { stream: Partial<Corkable> } }).connection.stream
    const answers: Array<Promise<pg.QueryResult | pg.QueryResult[]>> = []
    stream.cork?.()
    try {
      if (statements.length > 0) answers.push(Round.submit(this.client, statements))
      if (commit) answers.push(this.client.query('COMMIT'))
    } finally {
      stream.uncork?.()
    }
    const settled = await Promise.allSettled(answers)
    const failed = settled.find((answer) => answer.status === 'rejected')
    if (failed) throw failed.reason
    return settled.flatMap((answer) => (answer as PromiseFulfilledResult<pg.QueryResult | pg.QueryResult[]>).value)
  }

  /** Gated writes that yielded no row: their jobs wrote nothing and run again. */
  private checkGates(statements: readonly Statement[], results: readonly pg.QueryResult[]): void {
    statements.forEach(({ gate }, i) => {
      if (!gate || (results[i]?.rows.length ?? 0) > 0 || gate.slot.missed) return
      gate.slot.missed = true
      gate.missed()
    })
  }

  /** After every job has finished: the writes still queued, and COMMIT. Answers the jobs to run again. */
  async commit(): Promise<Set<Job>> {
    // A batch of one statement, nothing sent yet: the statement alone, a transaction by itself.
    const single = this.rounds === 0 && this.pending.length === 2
    const statements = single ? this.pending.slice(1) : this.pending
    this.pending = []
    const results = await this.send(statements, !single)
    // COMMIT of a transaction that a failed statement aborted answers ROLLBACK instead of failing: a job that
    // caught its statement's error must not make the others believe they were committed.
    if (results[results.length - 1]?.command === 'ROLLBACK') throw new Error('the write transaction was rolled back')
    this.checkGates(statements, results)
    return new Set(this.slots.filter((slot) => slot.missed).map((slot) => slot.job))
  }
}

/**
 * Jobs queued while a batch is in its first two round trips join it (WriterTx.admit): they wait for one round trip
 * instead of for the whole batch, and the batch still ends after a few.
 */
const ADMIT_ROUNDS = 2

/**
 * Group commit on one connection. Every write queued while a batch commits goes into the next batch: one round of
 * BEGIN/COMMIT for many writes. A batch runs its jobs side by side (WriterTx, ordered by their keys) without
 * savepoints; when one fails, the batch rolls back and each job runs again in a transaction of its own, so one bad
 * write fails alone (the jobs load and decide inside their transaction, so running one again decides again on what
 * is committed).
 */
export class PgWriteQueue {
  private jobs: Job[] = []
  /** Jobs of a batch whose COMMIT failed, to run one by one before the next batch. */
  private alone: Job[] = []
  /** Jobs whose gated write missed (Tx.writeIfCurrent), to run again first in the next batch, in order. */
  private again: Job[] = []
  /**
   * The outcome of the last batch sent: the connection answers COMMITs in order, so it settles after those of every
   * batch sent before it.
   */
  private committing: Promise<void> = Promise.resolve()
  private running: Promise<void> | undefined
  private scheduled = false
  private closed = false
  private client: pg.PoolClient | undefined
  /** The batch that takes jobs as they come (WriterTx.admit). */
  private open: WriterTx | undefined

  constructor(private readonly db: PgDb) {}

  run<T>(fn: (tx: Tx) => Promise<T>, options: WriteJobOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'))
    return new Promise<T>((resolve, reject) => {
      const job: Job = { fn, options, resolve: resolve as (value: unknown) => void, reject }
      if (this.open?.admit(job)) return
      this.jobs.push(job)
      this.schedule(options.urgent ?? false)
    })
  }

  private schedule(urgent: boolean): void {
    if (this.scheduled || this.running) return
    this.scheduled = true
    if (urgent) queueMicrotask(() => this.kick())
    else setImmediate(() => this.kick())
  }

  private kick(): void {
    this.scheduled = false
    if (this.running || !this.queued()) return
    this.running = this.drain().finally(() => {
      this.running = undefined
      if (this.queued()) this.schedule(true)
    })
  }

  private queued(): boolean {
    return this.jobs.length > 0 || this.alone.length > 0 || this.again.length > 0
  }

  /** Jobs whose gated write missed: each runs again, deciding on what it reads. */
  private runAgain(jobs: readonly Job[]): void {
    for (const job of jobs) job.rerun = true
    this.again.push(...jobs)
    this.schedule(true)
  }

  private async drain(): Promise<void> {
    const alone = this.alone
    const jobs = [...this.again, ...this.jobs]
    this.alone = []
    this.again = []
    this.jobs = []
    let client: pg.PoolClient
    try {
      client = await this.connection()
    } catch (error) {
      this.db.failed(error)
      for (const job of [...alone, ...jobs]) job.reject(isConnectionError(error) ? unavailable(error) : error)
      return
    }
    // Jobs of a batch whose COMMIT failed: each alone, its commit awaited.
    if (alone.length > 0 && !(await this.eachAlone(client, alone))) {
      for (const job of jobs) job.reject(unavailable(new Error('the database connection was lost')))
      return
    }
    if (jobs.length === 0) return
    try {
      const { values, committed } = await this.transaction(client, jobs, ADMIT_ROUNDS)
      // The COMMIT is on its way. The next batch may start behind it on the same connection, which runs them in
      // order, so commit order (the seq order the outbox relies on) stays the order of the batches. The jobs
      // learn their outcome from the COMMIT's answer.
      const settled = committed.then(
        (missed) => {
          jobs.forEach((job, i) => missed.has(job) || job.resolve(values[i]))
          if (missed.size > 0) this.runAgain([...missed])
        },
        (error: unknown) => {
          if (isConnectionError(error)) return this.lost(error, jobs)
          if (jobs.length === 1) return (jobs[0] as Job).reject(error)
          // A write queued last failed: each job alone, after the batch now on the connection.
          this.alone.push(...jobs)
          this.schedule(true)
        },
      )
      this.committing = settled
    } catch (error) {
      if (isConnectionError(error)) return this.lost(error, jobs)
      if (jobs.length === 1) return (jobs[0] as Job).reject(error)
      // One job failed: each alone, in its own transaction.
      await this.eachAlone(client, jobs)
    }
  }

  /** Each job in a transaction of its own, in order; false when the connection was lost on the way. */
  private async eachAlone(client: pg.PoolClient, jobs: Job[]): Promise<boolean> {
    for (const [i, job] of jobs.entries()) {
      try {
        const { values, committed } = await this.transaction(client, [job])
        if ((await committed).size > 0) this.runAgain([job])
        else job.resolve(values[0])
      } catch (single) {
        if (isConnectionError(single)) {
          this.lost(single, jobs.slice(i))
          return false
        }
        job.reject(single)
      }
    }
    return true
  }

  /**
   * Runs the jobs in one transaction up to its COMMIT, which it sends: \`committed\` settles with the COMMIT's
   * answer, the jobs whose gated write missed (Tx.writeIfCurrent). With \`admitRounds\`, jobs queued meanwhile join \`jobs\` (WriterTx.admit).
   */
  private async transaction(
    client: pg.PoolClient,
    jobs: Job[],
    admitRounds = 0,
  ): Promise<{ values: unknown[]; committed: Promise<Set<Job>> }> {
    const tx = new WriterTx(client, jobs, admitRounds)
    if (admitRounds > 0) this.open = tx
    try {
      const slots = await tx.run()
      this.open = undefined
      const values: unknown[] = []
      for (const { outcome } of slots) {
        if (!outcome?.ok) throw outcome?.error
        values.push(outcome.value)
      }
      // Sent here, synchronously; from now on nothing may send ROLLBACK: the next batch may follow on the connection.
      return { values, committed: tx.commit() }
    } catch (error) {
      this.open = undefined
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  /**
   * The connection died with the batch. Its COMMIT may or may not have reached the database: the callers get
   * StoreUnavailableError, and what they asked for is either committed whole or not at all.
   */
  private lost(error: unknown, jobs: Job[]): void {
    this.client?.release(error instanceof Error ? error : true)
    this.client = undefined
    this.db.failed(error)
    for (const job of jobs) job.reject(unavailable(error))
  }

  private async connection(): Promise<pg.PoolClient> {
    if (this.client) return this.client
    const client = await this.db.writerPool.connect()
    client.on('error', (error) => {
      if (this.client === client) {
        this.client = undefined
        client.release(error)
      }
      this.db.failed(error)
    })
    this.client = client
    return client
  }

  async close(): Promise<void> {
    this.closed = true
    while (this.running || this.queued()) {
      if (!this.running) this.kick()
      await this.running
      await this.committing
    }
    this.client?.release()
    this.client = undefined
  }
}
