import pg from 'pg'
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
  readonly writes: PgWriteQueue
  private healthy = true
  private probe: NodeJS.Timeout | undefined
  private closed = false
  private readonly restoredListeners: Array<() => void> = []

  constructor(private readonly options: PgDbOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolMax,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      types,
    })
    // An idle connection dropped by the server must not crash the process.
    this.pool.on('error', (error) => this.failed(error))
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
    await this.pool.end()
  }
}

interface Job {
  fn: (tx: Tx) => Promise<unknown>
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** PostgreSQL's string literal for `text` (pg's escapeLiteral): quotes doubled, backslashes under E''. */
function escapeLiteral(text: string): string {
  let backslash = false
  let out = "'"
  for (const c of text) {
    if (c === "'") out += "''"
    else if (c === '\\') {
      out += '\\\\'
      backslash = true
    } else out += c
  }
  out += "'"
  return backslash ? ` E${out}` : out
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`)
    return String(value)
  }
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'string') return escapeLiteral(value)
  if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(',')}]`
  throw new Error(`no SQL literal for ${typeof value}`)
}

/** The statement with its parameters written in as literals, so that several go in one round trip. */
export function inline(text: string, params: unknown[] = []): string {
  let n = 0
  return text.replace(/\?/g, () => literal(params[n++]))
}

/**
 * The writer's transaction. Statements travel as simple queries with their parameters inlined; writes whose result
 * is not read wait and go with the next statement that is, BEGIN with the first and COMMIT with the last: a job that
 * loads a row and writes its consequences costs two round trips, however many statements it writes.
 */
class WriterTx implements Tx {
  private pending: string[] = ['BEGIN']

  constructor(private readonly client: pg.PoolClient) {}

  write(text: string, params?: unknown[]): void {
    this.pending.push(inline(text, params))
  }

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.send(inline(text, params))).rows as R[]
  }

  async exec(text: string, params?: unknown[]): Promise<number> {
    return (await this.send(inline(text, params))).rowCount ?? 0
  }

  async commit(): Promise<void> {
    await this.send('COMMIT')
  }

  private async send(statement: string): Promise<pg.QueryResult> {
    this.pending.push(statement)
    const text = this.pending.join(';\n')
    this.pending = []
    const result = (await this.client.query(text)) as pg.QueryResult | pg.QueryResult[]
    return Array.isArray(result) ? (result[result.length - 1] as pg.QueryResult) : result
  }
}

/**
 * Group commit on one connection. Every write queued while a batch commits goes into the next batch: one round of
 * BEGIN/COMMIT for many writes. A batch runs its jobs one after another without savepoints; when one fails, the
 * batch rolls back and each job runs again in a transaction of its own, so one bad write fails alone (the jobs
 * load and decide inside their transaction, so running one again decides again on what is committed).
 */
export class PgWriteQueue {
  private jobs: Job[] = []
  private running: Promise<void> | undefined
  private scheduled = false
  private closed = false
  private client: pg.PoolClient | undefined

  constructor(private readonly db: PgDb) {}

  run<T>(fn: (tx: Tx) => Promise<T>, urgent = false): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'))
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ fn, resolve: resolve as (value: unknown) => void, reject })
      this.schedule(urgent)
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
    if (this.running || this.jobs.length === 0) return
    this.running = this.drain().finally(() => {
      this.running = undefined
      if (this.jobs.length > 0) this.schedule(true)
    })
  }

  private async drain(): Promise<void> {
    const jobs = this.jobs
    this.jobs = []
    let client: pg.PoolClient
    try {
      client = await this.connection()
    } catch (error) {
      this.db.failed(error)
      for (const job of jobs) job.reject(isConnectionError(error) ? unavailable(error) : error)
      return
    }
    try {
      const values = await this.transaction(client, jobs)
      jobs.forEach((job, i) => job.resolve(values[i]))
    } catch (error) {
      if (isConnectionError(error)) return this.lost(error, jobs)
      if (jobs.length === 1) return (jobs[0] as Job).reject(error)
      // One job failed: each alone, in its own transaction.
      for (const job of jobs) {
        try {
          job.resolve((await this.transaction(client, [job]))[0])
        } catch (single) {
          if (isConnectionError(single)) return this.lost(single, [job, ...jobs.slice(jobs.indexOf(job) + 1)])
          job.reject(single)
        }
      }
    }
  }

  private async transaction(client: pg.PoolClient, jobs: Job[]): Promise<unknown[]> {
    const tx = new WriterTx(client)
    try {
      const values: unknown[] = []
      for (const job of jobs) values.push(await job.fn(tx))
      await tx.commit()
      return values
    } catch (error) {
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
    const client = await this.db.pool.connect()
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
    while (this.running || this.jobs.length > 0) {
      if (!this.running) this.kick()
      await this.running
    }
    this.client?.release()
    this.client = undefined
  }
}
