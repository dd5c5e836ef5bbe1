/** Entries each cache holds at most; the oldest filled goes first. */
export const CACHE_MAX = 10_000

/**
 * How long an entry serves at most: on PostgreSQL the bound on a change going unheard when the LISTEN connection
 * dies without either end noticing (a half-open connection), which no notification or reset reports.
 */
export const CACHE_MAX_AGE_MS = 30_000

/**
 * What a store keeps of rows that every request reads and that rarely change (API keys, what a lock command needs
 * of its device), filled on a miss and forgotten when they change (docs/scale-out.md#caches). The store that owns
 * the cache says when it may serve (`live`): always for SQLite, whose one process makes every change; for
 * PostgreSQL only while the instance listens for the other instances' changes (PgCaches).
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
