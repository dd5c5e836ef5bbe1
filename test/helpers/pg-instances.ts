import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { test, vi } from 'vitest'
import { iso } from '../../src/domain/clock.js'
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres/index.js'
import { tempDataDir } from './latchkey.js'
import { dropTestDatabase, queryPostgres, testDatabaseEnv } from './store.js'

/** A statement on a connection of the test's own. */
export type Sql = (text: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>

/**
 * Two stores on one empty test database, as two instances would be (docs/scale-out.md), and `sql` beside them.
 * The database is dropped afterwards.
 */
export const it = test.extend<{ url: string; stores: [PostgresStore, PostgresStore]; sql: Sql }>({
  // eslint-disable-next-line no-empty-pattern
  url: async ({}, use) => {
    const dir = tempDataDir()
    await use(testDatabaseEnv(dir).DATABASE_URL as string)
    dropTestDatabase(dir)
  },
  stores: async ({ url }, use) => {
    const open = () => createPostgresStore({ url, newId: randomUUID, now: () => iso(Date.now()) })
    const a = await open()
    const b = await open()
    await use([a, b])
    await a.close()
    await b.close()
  },
  sql: async ({ url }, use) => {
    await use((text, params) => queryPostgres(url, text, params))
  },
})

/** A workspace `ws` with online devices that may lock and unlock. */
export async function seedDevices(sql: Sql, deviceIds: string[]): Promise<void> {
  const at = iso(Date.now())
  await sql(`INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('ws', 'pg', $1)`, [at])
  await sql(
    `INSERT INTO devices (device_id, workspace_id, display_name, custom_metadata, secret_hash, can_remotely_lock,
       can_remotely_unlock, created_at, online) SELECT id, 'ws', 'door', '{}', 'x', true, true, $2, true
     FROM unnest($1::text[]) AS id`,
    [deviceIds, at],
  )
}

/**
 * The texts of the statements every pg client sends from now on, until `restore`: a query's own, or each statement
 * of a round trip of the PostgreSQL store's writer, which goes as one query (`texts`).
 */
export function sentStatements(): { texts: () => string[]; restore: () => void } {
  const query = vi.spyOn(pg.Client.prototype, 'query')
  return {
    texts: () =>
      query.mock.calls.flatMap(([config]) => {
        if (typeof config === 'string') return [config]
        const { text, texts } = config as { text: string; texts?: string[] }
        return texts ?? [text]
      }),
    restore: () => query.mockRestore(),
  }
}
