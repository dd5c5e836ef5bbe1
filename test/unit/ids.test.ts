import { describe, expect, it } from 'vitest'
import { newId } from '../../src/app/ids.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('newId', () => {
  it('mints distinct UUIDv7s that sort in the order they were minted, across refills of the random pool', () => {
    // More than several pools' worth (512 ids each), most of them within the same millisecond.
    const ids = Array.from({ length: 5000 }, () => newId())
    for (const id of ids) expect(id).toMatch(UUID_V7)
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
  })

  it('carries the current time in its first 48 bits', () => {
    const before = Date.now()
    const id = newId()
    const after = Date.now()
    const ms = Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)
    // Within a millisecond that ran out of sequence numbers the time may run ahead by one.
    expect(ms).toBeGreaterThanOrEqual(before)
    expect(ms).toBeLessThanOrEqual(after + 1)
  })

  it('draws fresh random bits for every id', () => {
    const tails = new Set(Array.from({ length: 2000 }, () => newId().slice(-12)))
    expect(tails.size).toBe(2000)
  })
})
