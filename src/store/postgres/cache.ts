import type { ActionDevice } from '../../app/store.js'
import { CACHE_MAX, ReadCache } from '../read-cache.js'
import type { PgListener } from './notify.js'

/**
 * The channel on which a transaction that changes what an instance caches tells every instance to forget it
 * (docs/scale-out.md#caches). Payload: `keys` (every API key) or `device:ID`, `devices` (every device).
 */
export const CACHE_CHANNEL = 'latchkey_cache'

/**
 * The caches of one PostgreSQL store (API keys, devices) and how they learn of changes: the transaction that changes
 * a cached row sends a notification on CACHE_CHANNEL with its commit, and every instance forgets the entry when it
 * arrives (the one that changed it, already when its commit returns). The caches serve only while this instance's
 * LISTEN on the channel is up; when that connection is lost they forget everything (a notification may be missed
 * meanwhile) and read the database until LISTEN is back.
 */
export class PgCaches {
  /** API key hash → its workspace. */
  readonly keys: ReadCache<string>
  /** Device id → what a lock or unlock request needs of it (PgDevices.forAction). */
  readonly devices: ReadCache<ActionDevice>

  constructor(listener: PgListener, now: () => number, max = CACHE_MAX) {
    const live = () => listener.listening(CACHE_CHANNEL)
    this.keys = new ReadCache(live, max, now)
    this.devices = new ReadCache(live, max, now)
    listener.onReset(() => this.clear())
    listener.listen(CACHE_CHANNEL, (payload) => this.forget(payload))
  }

  /** A CACHE_CHANNEL payload, sent by this instance's transaction or another's. */
  forget(payload: string): void {
    if (payload === 'keys') this.keys.clear()
    else if (payload === 'devices') this.devices.clear()
    else if (payload.startsWith('device:')) this.devices.forget(payload.slice('device:'.length))
  }

  clear(): void {
    this.keys.clear()
    this.devices.clear()
  }
}
