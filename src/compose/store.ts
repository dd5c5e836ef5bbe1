import { mkdirSync } from 'node:fs'
import { newId } from '../app/ids.js'
import type { AttemptService } from '../app/attempts.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { createStore } from '../store/index.js'
import { lockDataDir } from './data-dir-lock.js'
import type { Runtime } from './runtime.js'

/** Step 1: the store the configuration selects, its committed events fed to the bus. */
export async function openStore(
  config: Pick<Config, 'DATA_DIR' | 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'EMBEDDED_BROKER'>,
  rt: Pick<Runtime, 'now' | 'bus' | 'lifecycle' | 'log'>,
): Promise<Store> {
  mkdirSync(config.DATA_DIR, { recursive: true })
  // SQLite serves one process: a second one on the same DATA_DIR is refused at once (docs/scale-out.md).
  if (!config.DATABASE_URL) rt.lifecycle.defer('data dir lock', lockDataDir(config.DATA_DIR))
  const store = await createStore(config, {
    newId,
    now: rt.now,
    onEvents: (events, deliveriesQueued) => rt.bus.emit('eventsCommitted', events, deliveriesQueued),
    onError: (error, context) => rt.log.error({ err: error, context }, context),
  })
  rt.lifecycle.defer('store', () => store.close())
  // The embedded broker starts empty: nobody is connected yet, and a lock is online once it says so again. An
  // external broker keeps its sessions across this start, and other instances share it: presence stays as stored
  // and the retained statuses read at connect correct it (docs/scale-out.md#several-instances).
  if (config.EMBEDDED_BROKER) await store.devices.markAllOffline()
  return store
}

/**
 * After a lost database returns: settle the attempts whose deadline passed meanwhile and re-arm the rest (the
 * dispatcher retries its deliveries by itself). See docs/operations.md.
 */
export function recoverWhenRestored(
  store: Pick<Store, 'onRestored'>,
  attempts: Pick<AttemptService, 'recover'>,
  rt: Pick<Runtime, 'log' | 'onError'>,
): void {
  store.onRestored(() => {
    rt.log.info('database reachable again')
    attempts.recover().catch((error: unknown) => rt.onError(error, 'recover'))
  })
}
