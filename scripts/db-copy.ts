/**
 * Moves an installation from SQLite to PostgreSQL (docs/operations.md):
 *
 *   npm run db:copy -- --from ./data --to "$DATABASE_URL"
 *
 * Copies every table of DATA_DIR/latchkey.db (workspaces, API-key hashes, devices and their secret hashes, attempts
 * and their histories, events, webhooks and their secrets, deliveries and their attempts, settings) into an empty
 * PostgreSQL database, in one transaction, keeping every row's seq so that cursors and orders stay the same. Prints
 * progress, verifies the row counts, and refuses a target that already holds rows. Stop latchkey before copying.
 */
import Database from 'better-sqlite3'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { redactUrl } from '../src/config.js'
import { PgDb } from '../src/store/postgres/database.js'
import { TABLES } from '../src/store/postgres/migrations.js'
import { ATTEMPT_COLUMNS, DELIVERY_ATTEMPT_COLUMNS } from '../src/store/rows.js'
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../src/store/sqlite/migrations.js'

type Table = (typeof TABLES)[number]

/** SQLite stores booleans as 0/1; these columns are boolean on PostgreSQL. */
const BOOLEAN_COLUMNS: Partial<Record<Table, string[]>> = {
  devices: ['can_remotely_lock', 'can_remotely_unlock', 'online', 'locked', 'door_open', 'jammed'],
  webhooks: ['enabled'],
  deliveries: ['held'],
  delivery_attempts: ['manual', 'will_retry'],
}

/** Tables keyed by an identity `seq` whose sequence must continue after the copied rows. */
const SEQ_TABLES: Table[] = TABLES.filter((table) => table !== 'settings' && table !== 'api_keys')

const BATCH = 2000

export interface CopyOptions {
  /** DATA_DIR, or the database file itself. */
  from: string
  /** postgres://… */
  to: string
  log?: (line: string) => void
}

export type CopyCounts = Record<Table, number>

/**
 * SQLite keeps an attempt's history as a JSON array in its row (`history`, oldest entry first); PostgreSQL keeps a row
 * per entry. The entries as rows, numbered attempt by attempt in their order, which is the order PostgreSQL reads.
 */
const HISTORY_ROWS = `FROM action_attempts a, json_each(a.history) h`

/** The source's rows in seq order. */
function selectAll(table: Table): string {
  if (table === 'attempt_history')
    return `SELECT row_number() OVER (ORDER BY a.seq, h.key) AS seq, a.action_attempt_id, h.value ->> 'at' AS at,
      h.value ->> 'kind' AS kind, h.value -> 'detail' AS detail ${HISTORY_ROWS} ORDER BY a.seq, h.key`
  if (table === 'action_attempts') return `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts ORDER BY seq`
  // Not `*`: that would include the generated `event_type_key` (SQLite migration 5), which PostgreSQL has no column for.
  if (table === 'delivery_attempts') return `SELECT ${DELIVERY_ATTEMPT_COLUMNS} FROM delivery_attempts ORDER BY seq`
  if (table === 'settings') return 'SELECT * FROM settings ORDER BY key'
  if (table === 'api_keys') return 'SELECT * FROM api_keys ORDER BY rowid'
  return `SELECT * FROM ${table} ORDER BY seq`
}

export async function copySqliteToPostgres(options: CopyOptions): Promise<CopyCounts> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`))
  const file =
    existsSync(options.from) && statSync(options.from).isDirectory() ? join(options.from, 'latchkey.db') : options.from
  if (!existsSync(file)) throw new Error(`no SQLite database at ${file}`)
  const source = new Database(file, { readonly: true, fileMustExist: true })
  const target = new PgDb({ url: options.to, poolMax: 2 })
  try {
    const version = source.pragma('user_version', { simple: true }) as number
    if (version !== SQLITE_MIGRATIONS.length)
      throw new Error(
        `${file} is at schema version ${version}, this latchkey writes ${SQLITE_MIGRATIONS.length}: start latchkey on it once (it migrates), stop it, then copy`,
      )
    log(`from ${file}`)
    log(`to   ${redactUrl(options.to)}`)
    await target.migrate()
    for (const table of TABLES) {
      const n = (await target.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n ?? 0
      if (n > 0)
        throw new Error(`the target database is not empty (${table} has ${n} rows): copy only into an empty database`)
    }
    const expected = {} as CopyCounts
    const client = await target.pool.connect()
    try {
      await client.query('BEGIN')
      for (const table of TABLES) {
        const from = table === 'attempt_history' ? HISTORY_ROWS : `FROM ${table}`
        const total = (source.prepare(`SELECT count(*) AS n ${from}`).get() as { n: number }).n
        expected[table] = total
        const booleans = BOOLEAN_COLUMNS[table] ?? []
        let copied = 0
        let batch: Array<Record<string, unknown>> = []
        const flush = async () => {
          if (batch.length === 0) return
          const columns = Object.keys(batch[0] as object)
          await client.query(
            `INSERT INTO ${table} (${columns.join(', ')}) SELECT ${columns.join(', ')} FROM json_populate_recordset(NULL::${table}, $1)`,
            [JSON.stringify(batch)],
          )
          copied += batch.length
          batch = []
          log(`  ${table}: ${copied}/${total}`)
        }
        for (const row of source.prepare(selectAll(table)).iterate() as Iterable<Record<string, unknown>>) {
          for (const column of booleans) if (row[column] !== null) row[column] = row[column] === 1
          batch.push(row)
          if (batch.length >= BATCH) await flush()
        }
        await flush()
        if (total === 0) log(`  ${table}: 0/0`)
      }
      for (const table of SEQ_TABLES)
        await client.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'seq'), coalesce((SELECT max(seq) FROM ${table}), 0) + 1, false)`,
        )
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
    // Verify: every table holds as many rows as the source.
    const problems: string[] = []
    for (const table of TABLES) {
      const n = (await target.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n ?? 0
      if (n !== expected[table]) problems.push(`${table}: ${n} rows, expected ${expected[table]}`)
    }
    if (problems.length > 0) throw new Error(`verification failed: ${problems.join('; ')}`)
    await target.query('ANALYZE')
    log(`verified: ${TABLES.map((table) => `${table} ${expected[table]}`).join(', ')}`)
    return expected
  } finally {
    source.close()
    await target.close()
  }
}

function parseArgs(argv: string[]): { from?: string; to?: string } {
  const out: { from?: string; to?: string } = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const [key, inline] = arg.split('=', 2) as [string, string | undefined]
    const value = inline ?? argv[++i]
    if (key === '--from') out.from = value
    else if (key === '--to') out.to = value
    else throw new Error(`unknown argument ${arg}`)
  }
  return out
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const { from, to } = parseArgs(process.argv.slice(2))
    if (!from || !to) throw new Error('usage: npm run db:copy -- --from ./data --to postgres://USER:PASS@HOST:PORT/DB')
    await copySqliteToPostgres({ from, to })
  } catch (error) {
    process.stderr.write(`db:copy failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
}
