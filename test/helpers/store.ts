import Database from 'better-sqlite3'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { copySqliteToPostgres } from '../../scripts/db-copy.js'
import { PG_BIN } from '../../scripts/pg-test-server.js'
import { newId } from '../../src/app/ids.js'
import type { DeliveryLogStore, DeviceStore } from '../../src/app/store.js'
import { initialProps } from '../../src/domain/device.js'
import { PgDb } from '../../src/store/postgres/database.js'
import { PostgresDeliveryLog } from '../../src/store/postgres/delivery-log.js'
import { SqliteDeliveryLog } from '../../src/store/sqlite/delivery-log.js'

/**
 * Which store the suite runs on: `LATCHKEY_TEST_STORE=postgres` (npm run test:pg) runs every latchkey the tests
 * start on PostgreSQL, one database per data directory, on the private server test/helpers/pg-global-setup.ts
 * started for the run. Otherwise SQLite in the data directory, as in production without DATABASE_URL.
 */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.LATCHKEY_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite'

/** The admin URL of the run's private PostgreSQL (set by the global setup). */
export function testPostgresUrl(): string {
  const url = process.env.LATCHKEY_TEST_PG_URL
  if (!url) throw new Error('LATCHKEY_TEST_STORE=postgres but no test PostgreSQL is running (see vitest.config.ts)')
  return url
}

function psql(sql: string): string {
  const url = new URL(testPostgresUrl())
  return execFileSync(
    join(PG_BIN, 'psql'),
    ['-X', '-q', '-t', '-A', '-h', url.hostname, '-p', url.port, '-U', 'postgres', '-d', 'postgres', '-c', sql],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  ).toString()
}

/** The database that belongs to a data directory: a restart on the same directory finds the same data. */
export function testDatabaseName(dataDir: string): string {
  return `lk_${createHash('sha256').update(dataDir).digest('hex').slice(0, 20)}`
}

const created = new Set<string>()

/**
 * The environment that puts a latchkey started on `dataDir` on the store under test: nothing for SQLite, a
 * `DATABASE_URL` to an empty database of its own (created on first use) for PostgreSQL.
 */
export function testDatabaseEnv(dataDir: string): Record<string, string> {
  if (TEST_STORE === 'sqlite') return {}
  const name = testDatabaseName(dataDir)
  if (!created.has(name)) {
    if (psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`).trim() !== '1')
      psql(`CREATE DATABASE ${name} TEMPLATE template0`)
    created.add(name)
  }
  const url = new URL(testPostgresUrl())
  url.pathname = `/${name}`
  return { DATABASE_URL: url.toString() }
}

/** Drops the database of a data directory (its connections are closed by force). */
export function dropTestDatabase(dataDir: string): void {
  if (TEST_STORE === 'sqlite') return
  const name = testDatabaseName(dataDir)
  psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  created.delete(name)
}

/** Drops every database this test process created: the per-file teardown (test/helpers/pg-setup-file.ts). */
export function dropCreatedDatabases(): void {
  for (const name of [...created]) {
    psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    created.delete(name)
  }
}

/**
 * Runs SQL on the database of a latchkey that used `dataDir`, whichever the store: for tests that check what is
 * stored (hashes, not keys; one row per attempt) or break it on purpose. Counts come back as numbers on both.
 */
export async function queryTestDatabase<R = Record<string, unknown>>(dataDir: string, sql: string): Promise<R[]> {
  if (TEST_STORE === 'sqlite') {
    const db = new Database(join(dataDir, 'latchkey.db'))
    try {
      const statement = db.prepare(sql)
      if (statement.reader) return statement.all() as R[]
      statement.run()
      return []
    } finally {
      db.close()
    }
  }
  const client = new pg.Client({
    connectionString: testDatabaseEnv(dataDir).DATABASE_URL,
    types: { getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)) },
  } as pg.ClientConfig)
  await client.connect()
  try {
    return (await client.query(sql)).rows as R[]
  } finally {
    await client.end()
  }
}

/** Runs one statement on the PostgreSQL database at `url`, on a connection of its own, closed after it. */
export async function queryPostgres(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, params)).rows
  } finally {
    await client.end()
  }
}

/**
 * The delivery log of the store under test over the rows of a SQLite database: that database itself, or a copy of
 * it (npm run db:copy) in a fresh PostgreSQL database.
 */
export async function deliveryLogUnderTest(
  db: Database.Database,
): Promise<{ log: DeliveryLogStore; close: () => Promise<void> }> {
  if (TEST_STORE === 'sqlite') return { log: new SqliteDeliveryLog(db), close: async () => {} }
  const dir = dirname(db.name)
  const url = testDatabaseEnv(dir).DATABASE_URL as string
  await copySqliteToPostgres({ from: db.name, to: url, log: () => {} })
  const pgDb = new PgDb({ url, poolMax: 2 })
  return {
    log: new PostgresDeliveryLog(pgDb),
    close: async () => {
      await pgDb.close()
      dropTestDatabase(dir)
    },
  }
}

/**
 * A lock created in `workspaceId` through the store, as `/devices/create` records one (with its `device.added`
 * event): able to lock and unlock, offline. Returns its id.
 */
export async function addDevice(
  devices: Pick<DeviceStore, 'create'>,
  workspaceId: string,
  deviceId: string = newId(),
): Promise<string> {
  const at = new Date().toISOString()
  await devices.create({
    device: {
      device_id: deviceId,
      workspace_id: workspaceId,
      display_name: deviceId,
      nickname: null,
      custom_metadata: {},
      created_at: at,
      can_remotely_lock: true,
      can_remotely_unlock: true,
      props: initialProps(),
    },
    secretHash: 'secret',
    event: { event_type: 'device.added', workspace_id: workspaceId, device_id: deviceId, occurred_at: at },
  })
  return deviceId
}
