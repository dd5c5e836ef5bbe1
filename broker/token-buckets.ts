/**
 * One token bucket per key: `capacity` tokens, refilled at `perSecond`; full buckets are forgotten.
 *
 * A bucket is one number, the time (ms) at which it is full again: its level at `now` follows from it, and a key
 * without one is full. Keys are kept in the order of their last take, so the buckets at the front are the ones most
 * likely refilled; each take forgets the refilled ones it finds there, and so does `sweep`. Every connected lock
 * takes tokens, and an idle one must not keep a bucket (docs/performance.md#idle-lock-memory).
 */
export class TokenBuckets {
  private readonly fullAt = new Map<string, number>()
  private readonly msPerToken: number

  /**
   * @param maxKeys bound on the keys tracked at once; past it the oldest bucket is forgotten (it refills to full,
   *   the generous side), so a flood of distinct keys cannot grow memory.
   */
  constructor(
    perSecond: number,
    private readonly capacity: number,
    private readonly maxKeys = 100_000,
  ) {
    this.msPerToken = 1000 / perSecond
  }

  /** Tokens left for `key` at `now` (ms), refilled since the last look. */
  private level(key: string, now: number): number {
    const fullAt = this.fullAt.get(key)
    if (fullAt === undefined || fullAt <= now) return this.capacity
    return this.capacity - (fullAt - now) / this.msPerToken
  }

  /** True when `key` has at least one token. */
  available(key: string, now: number): boolean {
    return this.level(key, now) >= 1
  }

  /** Takes one token; false (and nothing taken) when the bucket is empty. */
  take(key: string, now: number): boolean {
    if (this.level(key, now) < 1) return false
    const fullAt = Math.max(this.fullAt.get(key) ?? now, now) + this.msPerToken
    this.fullAt.delete(key)
    this.sweep(now, 2)
    if (this.fullAt.size >= this.maxKeys) this.fullAt.delete(this.fullAt.keys().next().value as string)
    this.fullAt.set(key, fullAt)
    return true
  }

  /** Forgets `key` if its bucket has refilled (nothing is lost by forgetting a full bucket). */
  forgetIfFull(key: string, now: number): void {
    if (this.level(key, now) >= this.capacity) this.fullAt.delete(key)
  }

  /**
   * Forgets refilled buckets from the front (least recently taken), up to `limit` of them, stopping at the first
   * that is not full yet.
   */
  sweep(now: number, limit = Infinity): void {
    let forgotten = 0
    for (const [key, fullAt] of this.fullAt) {
      if (forgotten >= limit || fullAt > now) return
      this.fullAt.delete(key)
      forgotten++
    }
  }

  get size(): number {
    return this.fullAt.size
  }
}
