import { describe, expect, it } from 'vitest'
import { TokenBuckets } from '../../broker/token-buckets.js'

describe('token buckets of the embedded broker', () => {
  it('allows the burst, then the rate', () => {
    // 2 per second, burst 3.
    const buckets = new TokenBuckets(2, 3)
    const t0 = 1_000_000
    expect([1, 2, 3, 4].map(() => buckets.take('k', t0))).toEqual([true, true, true, false])
    expect(buckets.available('k', t0 + 499)).toBe(false)
    expect(buckets.take('k', t0 + 500)).toBe(true)
    expect(buckets.take('k', t0 + 500)).toBe(false)
    // Refilled to the burst, never above it.
    expect([1, 2, 3, 4].map(() => buckets.take('k', t0 + 60_000))).toEqual([true, true, true, false])
  })

  it('forgets buckets once refilled: a later take sweeps them, as does sweep()', () => {
    // Scenario: 100 keys take one token each (idle locks after their connect), then one more take much later.
    const buckets = new TokenBuckets(10, 5)
    for (let i = 0; i < 100; i++) buckets.take(`lock-${i}`, 0)
    expect(buckets.size).toBe(100)
    buckets.take('late', 1_000)
    // Each take forgets at most two refilled buckets from the front: bounded work per message.
    expect(buckets.size).toBe(99)
    buckets.sweep(1_000)
    expect(buckets.size).toBe(1)
    // A bucket not yet full stays.
    buckets.sweep(1_050)
    expect(buckets.size).toBe(1)
    buckets.forgetIfFull('late', 1_100)
    expect(buckets.size).toBe(0)
  })

  it('bounds the keys it tracks', () => {
    const buckets = new TokenBuckets(1, 5, 10)
    for (let i = 0; i < 50; i++) buckets.take(`k${i}`, 0)
    expect(buckets.size).toBe(10)
  })
})
