import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { assertNever } from '../domain/assert.js'
import type { LatchkeyEvent } from '../domain/events.js'
import { createSqliteStore, databasePath } from './sqlite/index.js'

/** The storage engines latchkey can stand on, all behind the one `Store` port. */
export type StoreKind = 'sqlite'

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
}

export type StoreConfig = Pick<Config, 'DATA_DIR'>

/** The engine the configuration selects: SQLite in DATA_DIR, the only one so far. */
export function storeKind(_config: StoreConfig): StoreKind {
  return 'sqlite'
}

/** Opens (and migrates) the store the configuration selects. DATA_DIR must exist. */
export async function createStore(config: StoreConfig, deps: StoreDeps): Promise<Store> {
  const kind = storeKind(config)
  switch (kind) {
    case 'sqlite':
      return createSqliteStore({ filename: databasePath(config.DATA_DIR), ...deps })
    default:
      return assertNever(kind)
  }
}
