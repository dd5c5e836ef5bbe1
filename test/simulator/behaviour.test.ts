import { describe, expect, test } from 'vitest'
import {
  chance,
  drawLatency,
  mergeBehaviour,
  nextManualEventDelayMs,
  parseBehaviour,
  planCommand,
  seededRandom,
  type BehaviourInput,
} from '../../simulator/index.js'

/** A random source that replays a fixed sequence. */
const sequence = (...values: number[]) => {
  let i = 0
  return () => values[i++ % values.length] ?? 0
}

describe('behaviour knobs', () => {
  test('defaults are an instant, always-successful lock', () => {
    // Scenario: no knobs at all.
    const b = parseBehaviour({})
    expect(b).toMatchObject({ ackLatencyMs: 0, sendAccepted: false, jam: 0, silent: 0, manualEventsPerMinute: 0 })
    expect(planCommand(b, 'LOCK_DOOR', () => 0)).toEqual({
      outcome: { kind: 'success' },
      late: false,
      duplicate: false,
      latencyMs: 0,
    })
  })

  test.for<[BehaviourInput, RegExp]>([
    [{ jam: 1.5 }, /jam/],
    [{ ackLatencyMs: [50, 10] }, /min must not exceed max/],
    [{ flap: { everyMs: 0, downMs: 10 } }, /everyMs/],
    [{ jamm: 0.1 } as BehaviourInput, /jamm/],
  ])('rejects %o', ([input, message]) => {
    // Scenario: out-of-range values, inverted ranges and typos fail with a message naming the knob.
    expect(() => parseBehaviour(input)).toThrow(message)
  })

  test('per-lock override wins over fleet knobs', () => {
    // Scenario: fleet jam 0.1, one lock jam 1.
    expect(mergeBehaviour({ jam: 0.1, busy: 0.2 }, { jam: 1 })).toMatchObject({ jam: 1, busy: 0.2 })
  })

  test('draws errors in a fixed order; the first that fires wins', () => {
    // Scenario: every error knob at 0.5 and a random source returning 0.9, 0.1: busy (second in order) wins.
    const b = parseBehaviour({ unsupported: 0.5, busy: 0.5, lowBattery: 0.5, jam: 0.5, doorOpen: 0.5 })
    expect(planCommand(b, 'LOCK_DOOR', sequence(0.9, 0.1)).outcome).toEqual({ kind: 'error', type: 'device_busy' })
    expect(planCommand(b, 'LOCK_DOOR', sequence(0.9, 0.9, 0.9, 0.9, 0.1)).outcome).toEqual({
      kind: 'error',
      type: 'door_open',
    })
  })

  test('door open never refuses an unlock', () => {
    // Scenario: doorOpen=1 with UNLOCK_DOOR.
    expect(planCommand(parseBehaviour({ doorOpen: 1 }), 'UNLOCK_DOOR', () => 0).outcome).toEqual({ kind: 'success' })
  })

  test('silent beats every error', () => {
    // Scenario: silent=1 and jam=1.
    expect(planCommand(parseBehaviour({ silent: 1, jam: 1 }), 'LOCK_DOOR', () => 0).outcome).toEqual({ kind: 'silent' })
  })

  test('certain and impossible chances consume no randomness', () => {
    // Scenario: p=0 and p=1 never call the random source.
    const random = () => {
      throw new Error('called')
    }
    expect(chance(0, random)).toBe(false)
    expect(chance(1, random)).toBe(true)
  })

  test('latency is fixed or uniform within its range', () => {
    // Scenario: [10, 50] at random 0, 0.5 and 0.999.
    expect(drawLatency(20, () => 0.7)).toBe(20)
    expect([0, 0.5, 0.999].map((r) => drawLatency([10, 50], () => r))).toEqual([10, 30, 50])
  })

  test('seeded random sources repeat themselves', () => {
    // Scenario: two sources with the same seed give the same plans.
    const b = parseBehaviour({ jam: 0.3, busy: 0.3, ackLatencyMs: [0, 100] })
    const plans = (seed: number) => {
      const random = seededRandom(seed)
      return Array.from({ length: 20 }, () => planCommand(b, 'LOCK_DOOR', random))
    }
    expect(plans(42)).toEqual(plans(42))
    expect(plans(42)).not.toEqual(plans(43))
  })

  test('manual events follow the requested mean rate', () => {
    // Scenario: 6 per minute → mean gap of ~10 s over many draws.
    const random = seededRandom(7)
    const gaps = Array.from({ length: 5_000 }, () => nextManualEventDelayMs(6, random))
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
    expect(mean).toBeGreaterThan(9_000)
    expect(mean).toBeLessThan(11_000)
  })
})
