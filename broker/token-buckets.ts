/** One token bucket per key: `capacity` tokens, refilled at `perSecond`; full buckets are forgotten. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  /**
   * @param maxKeys bound on the keys tracked at once; past it the oldest bucket is forgotten (it refills to full,
   *   the generous side), so a flood of distinct keys cannot grow memory.
   */
  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Tokens left for `key` at `now` (ms), refilled since the last look. */
  private level(key: string, now: number): number {
    const bucket = this.buckets.get(key)
    if (!bucket) return this.capacity
    return Math.min(this.capacity, bucket.tokens + (Math.max(0, now - bucket.at) * this.perSecond) / 1000)
  }

  /** True when `key` has at least one token. */
  available(key: string, now: number): boolean {
    return this.level(key, now) >= 1
  }

  /** Takes one token; false (and nothing taken) when the bucket is empty. */
  take(key: string, now: number): boolean {
    const tokens = this.level(key, now)
    if (tokens < 1) return false
    this.buckets.delete(key)
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
    this.buckets.set(key, { tokens: tokens - 1, at: now })
    return true
  }

  /** Forgets `key` if its bucket has refilled (nothing is lost by forgetting a full bucket). */
  forgetIfFull(key: string, now: number): void {
    if (this.level(key, now) >= this.capacity) this.buckets.delete(key)
  }

  get size(): number {
    return this.buckets.size
  }
}
