import { describe, expect, it } from 'vitest'
import { ReadCache } from '../../src/store/read-cache.js'

describe('ReadCache', () => {
  it('serves an entry for at most its age, then reads again', async () => {
    // Scenario: a cache with a 30 s age on a hand-driven clock → a read at 29.999 s is served from the cache, one at
    // 30 s reads the database again (the bound when a dead LISTEN connection goes unnoticed).
    let now = 0
    const cache = new ReadCache<string>(
      () => true,
      10,
      () => now,
      30_000,
    )
    const loads: number[] = []
    const load = () => (loads.push(now), Promise.resolve(`v${loads.length}`))
    expect(await cache.read('k', load)).toBe('v1')
    now = 29_999
    expect(await cache.read('k', load)).toBe('v1')
    now = 30_000
    expect(await cache.read('k', load)).toBe('v2')
    expect(loads).toEqual([0, 30_000])
  })

  it('holds at most its bound, dropping the oldest entry, and keeps no read that a forgetting overtook', async () => {
    // Scenario: a cache of 2 filled with 3 keys → 2 entries, the first gone; a read that answers after the key was
    // forgotten (a change committed meanwhile) is not kept; nothing is kept while not listening.
    let live = true
    const cache = new ReadCache<string>(() => live, 2)
    const loads: string[] = []
    const load = (key: string) => () => (loads.push(key), Promise.resolve(`v-${key}`))
    for (const key of ['k1', 'k2', 'k3']) await cache.read(key, load(key))
    expect(cache.size).toBe(2)
    await cache.read('k3', load('k3'))
    await cache.read('k1', load('k1'))
    expect(loads).toEqual(['k1', 'k2', 'k3', 'k1'])

    let answer: (value: string) => void = () => {}
    const slow = cache.read('k9', () => new Promise<string>((resolve) => (answer = resolve)))
    cache.forget('k9')
    answer('stale')
    expect(await slow).toBe('stale')
    expect(await cache.read('k9', load('k9'))).toBe('v-k9')
    expect(loads.at(-1)).toBe('k9')

    live = false
    cache.clear()
    await cache.read('k1', load('k1'))
    live = true
    await cache.read('k1', load('k1'))
    expect(loads.slice(-2)).toEqual(['k1', 'k1'])
  })
})
