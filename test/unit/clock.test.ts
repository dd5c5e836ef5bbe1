import { describe, expect, it } from 'vitest'
import { iso } from '../../src/domain/clock.js'

describe('iso', () => {
  it('formats every time as its own, whatever was formatted before', () => {
    // Scenario: the same millisecond twice, another between and after → each answer matches Date's own formatting.
    const times = [0, 0, 1_795_716_709_350, 1_795_716_709_350, 1_795_716_709_351, 0, -1]
    expect(times.map(iso)).toEqual(times.map((ms) => new Date(ms).toISOString()))
  })

  it('still refuses a time that is not one', () => {
    // Scenario: NaN after a valid time → RangeError, as Date#toISOString throws; the valid time still formats.
    expect(iso(5)).toBe('1970-01-01T00:00:00.005Z')
    expect(() => iso(Number.NaN)).toThrow(RangeError)
    expect(iso(5)).toBe('1970-01-01T00:00:00.005Z')
  })
})
