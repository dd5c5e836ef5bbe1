import type { ActionDevice } from '../../app/store.js'
import type { PgListener } from './notify.js'

/**
 * The channel on which a transaction that changes what an instance caches tells every instance to forget it
 * (docs/scale-out.md#caches). Payload: `keys` (every API key) or `device:ID`, `devices` (every device).
 */
export const CACHE_CHANNEL = 'latchkey_cache'

/** Entries each cache holds at most; the oldest filled goes first. */
export const CACHE_MAX = 10_000

/**
 * How long an entry serves at most: the bound on a change going unheard when the LISTEN connection dies without
 * either end noticing (a half-open connection), which no notification or reset reports.
 */
export const CACHE_MAX_AGE_MS = 30_000

/**
 * What an instance keeps of rows that every request reads and that rarely change, filled on a miss, forgotten when
 * any instance changes them: that instance's transaction sends a notification on CACHE_CHANNEL with its commit,
 * and every instance forgets the entry when it arrives (the one that changed it, already when its commit returns).
 * The cache serves only while this instance's LISTEN on the channel is up; when that connection is lost, it
 * forgets everything (a notification may be missed meanwhile) and reads the database until LISTEN is back.
 *
 * A read that started before a change commits may answer after the change was forgotten: each forgetting starts a
 * new generation, and a read fills the cache only if no forgetting happened while it ran.
 */
export class ReadCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>()
  private generation = 0

  constructor(
    private readonly live: () => boolean,
    private readonly max = CACHE_MAX,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = CACHE_MAX_AGE_MS,
  ) {}

  get size(): number {
    return this.entries.size
  }

  /** The cached value, or what `load` reads (cached when found, while live and nothing was forgotten meanwhile). */
  async read(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (!this.live()) return load()
    const hit = this.entries.get(key)
    if (hit !== undefined) {
      if (this.now() < hit.until) return hit.value
      this.entries.delete(key)
    }
    const generation = this.generation
    const value = await load()
    if (value !== undefined && generation === this.generation && this.live()) {
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string)
      this.entries.set(key, { value, until: this.now() + this.maxAgeMs })
    }
    return value
  }

  forget(key: string): void {
    this.generation++
    this.entries.delete(key)
  }

  clear(): void {
    this.generation++
    this.entries.clear()
  }
}

/** The caches of one store (API keys, devices) and how they learn of changes: CACHE_CHANNEL on `listener`. */
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
