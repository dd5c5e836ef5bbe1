import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { assertNever } from '../domain/assert.js'
import type { LatchkeyEvent } from '../domain/events.js'
import { createPostgresStore } from './postgres/index.js'
import { createSqliteStore, databasePath } from './sqlite/index.js'

/** The storage engines latchkey can stand on, all behind the one `Store` port. */
export type StoreKind = 'sqlite' | 'postgres'

/** What a store needs from the process around it, whatever its engine. */
export interface StoreDeps {
  newId: () => string
  /** Current time as ISO 8601; events get their `created_at` from it. */
  now: () => string
  /**
   * Called after commit with the events a transaction recorded, and how many deliveries were queued since the last
   * call (0 lets the dispatcher skip reading the outbox; leave it undefined when unknown).
   */
  onEvents?: (events: LatchkeyEvent[], deliveriesQueued?: number) => void
  /** Losing and regaining the database, and other failures in the store's background work. */
  onError?: (error: unknown, context: string) => void
}

export type StoreConfig = Pick<Config, 'DATA_DIR' | 'DATABASE_URL' | 'DATABASE_POOL_MAX'>

/** The engine the configuration selects: PostgreSQL at DATABASE_URL, else SQLite in DATA_DIR (docs/operations.md). */
export function storeKind(config: StoreConfig): StoreKind {
  return config.DATABASE_URL ? 'postgres' : 'sqlite'
}

/** Opens (and migrates) the store the configuration selects. DATA_DIR must exist. */
export async function createStore(config: StoreConfig, deps: StoreDeps): Promise<Store> {
  const kind = storeKind(config)
  switch (kind) {
    case 'sqlite':
      return createSqliteStore({ filename: databasePath(config.DATA_DIR), ...deps })
    case 'postgres':
      return createPostgresStore({ url: config.DATABASE_URL as string, poolMax: config.DATABASE_POOL_MAX, ...deps })
    default:
      return assertNever(kind)
  }
}
