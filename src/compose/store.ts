import { mkdirSync } from 'node:fs'
import { newId } from '../app/ids.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { createStore } from '../store/index.js'
import type { Runtime } from './runtime.js'

/** Step 1: the store the configuration selects, its committed events fed to the bus. */
export async function openStore(
  config: Pick<Config, 'DATA_DIR'>,
  rt: Pick<Runtime, 'now' | 'bus' | 'lifecycle'>,
): Promise<Store> {
  mkdirSync(config.DATA_DIR, { recursive: true })
  const store = await createStore(config, {
    newId,
    now: rt.now,
    onEvents: (events, deliveriesQueued) => rt.bus.emit('eventsCommitted', events, deliveriesQueued),
  })
  rt.lifecycle.defer('store', () => store.close())
  // Nobody is connected yet: a lock is online once it says so again.
  await store.devices.markAllOffline()
  return store
}
