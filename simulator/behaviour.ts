import { z } from 'zod'
import type { DeviceErrorType, LockAction } from '../devices/index.js'

/**
 * Behaviour knobs of a virtual lock (`npm run simulate -- --help`) and the pure helpers drawing a command's fate.
 * Everything random goes through an injected `RandomSource`, so a seeded source makes a run repeatable.
 */

/** Returns a float in [0, 1), like Math.random. */
export type RandomSource = () => number

const probability = z.number().min(0).max(1).default(0)
const millis = z.number().int().min(0)

export const LatencySchema = z.union([
  millis,
  z.tuple([millis, millis]).refine(([min, max]) => min <= max, 'latency range: min must not exceed max'),
])
export type Latency = z.infer<typeof LatencySchema>

export const FlapSchema = z.strictObject({
  everyMs: z.number().int().positive(),
  downMs: millis,
})
export type Flap = z.infer<typeof FlapSchema>

export const BehaviourSchema = z.strictObject({
  /** Delay before the final ack: fixed, or drawn uniformly from [min, max]. */
  ackLatencyMs: LatencySchema.default(0),
  /** Send an `accepted` ack as soon as a command arrives, before the latency wait. */
  sendAccepted: z.boolean().default(false),
  jam: probability,
  doorOpen: probability,
  lowBattery: probability,
  busy: probability,
  unsupported: probability,
  /** Never ack at all. */
  silent: probability,
  /** Send the final ack twice. */
  duplicateAck: probability,
  /** Firmware that ignores the deadline: act and ack success only after `expires_at` + lateAckMarginMs. */
  lateAck: probability,
  lateAckMarginMs: millis.default(50),
  flap: FlapSchema.optional(),
  /** Mean rate of manual lock/unlock events (Poisson process). */
  manualEventsPerMinute: z.number().min(0).default(0),
  /** Battery consumed by each bolt movement. */
  batteryDrainPerCommand: z.number().min(0).max(1).default(0),
})

/** What callers write: every knob optional. */
export type BehaviourInput = z.input<typeof BehaviourSchema>
/** With defaults filled in. */
export type Behaviour = z.output<typeof BehaviourSchema>

/** Parses knobs (e.g. from a CLI); throws an Error whose message lists every problem. */
export function parseBehaviour(input: unknown): Behaviour {
  const parsed = BehaviourSchema.safeParse(input ?? {})
  if (!parsed.success) throw new Error(`invalid behaviour:\n${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** Fleet-wide knobs with a per-lock override on top. */
export function mergeBehaviour(base: BehaviourInput | undefined, override?: BehaviourInput): Behaviour {
  return parseBehaviour({ ...base, ...override })
}

/** Error types the simulator can produce; all of them are device-reported types of docs/mqtt.md#error-types. */
export type SimulatedErrorType = DeviceErrorType

export type Outcome = { kind: 'success' } | { kind: 'silent' } | { kind: 'error'; type: SimulatedErrorType }

export interface CommandPlan {
  outcome: Outcome
  /** Ack only after the deadline (and skip the expiry check). */
  late: boolean
  /** Send the final ack twice. */
  duplicate: boolean
  latencyMs: number
}

/** True with probability p; certain outcomes consume no randomness, so tests with p = 0 or 1 need no seed. */
export function chance(p: number, random: RandomSource): boolean {
  if (p <= 0) return false
  if (p >= 1) return true
  return random() < p
}

export function drawLatency(latency: Latency, random: RandomSource): number {
  if (typeof latency === 'number') return latency
  const [min, max] = latency
  return min === max ? min : Math.round(min + random() * (max - min))
}

/**
 * Draws the fate of one command. Each knob is drawn independently in a fixed order and the first that fires wins:
 * silent, unsupported, busy, low battery, jam, door open (LOCK_DOOR only: an open door never stops an unlock).
 */
export function planCommand(b: Behaviour, action: LockAction, random: RandomSource): CommandPlan {
  return {
    outcome: drawOutcome(b, action, random),
    late: chance(b.lateAck, random),
    duplicate: chance(b.duplicateAck, random),
    latencyMs: drawLatency(b.ackLatencyMs, random),
  }
}

function drawOutcome(b: Behaviour, action: LockAction, random: RandomSource): Outcome {
  if (chance(b.silent, random)) return { kind: 'silent' }
  const errors: Array<[number, SimulatedErrorType]> = [
    [b.unsupported, 'unsupported_action'],
    [b.busy, 'device_busy'],
    [b.lowBattery, 'low_battery'],
    [b.jam, 'lock_jammed'],
    [action === 'LOCK_DOOR' ? b.doorOpen : 0, 'door_open'],
  ]
  for (const [p, type] of errors) {
    if (chance(p, random)) return { kind: 'error', type }
  }
  return { kind: 'success' }
}

export function errorMessage(type: SimulatedErrorType): string {
  switch (type) {
    case 'lock_jammed':
      return 'The bolt jammed while moving.'
    case 'door_open':
      return 'Cannot lock: the door is open.'
    case 'low_battery':
      return 'Battery too low to move the bolt.'
    case 'device_busy':
      return 'The lock is busy with another operation.'
    case 'unsupported_action':
      return 'This lock does not support that action.'
    case 'command_expired':
      return 'Command received after its expires_at; not executed.'
    default:
      return assertNever(type)
  }
}

/** Delay until the next manual event of a Poisson process with the given rate (exponential inter-arrival). */
export function nextManualEventDelayMs(perMinute: number, random: RandomSource): number {
  const meanMs = 60_000 / perMinute
  return Math.max(1, Math.round(-Math.log(1 - random()) * meanMs))
}

/** Small seedable PRNG (mulberry32), for repeatable simulations. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`)
}
