/**
 * When a failed webhook delivery is tried again (docs/webhooks.md): the configured schedule, ±20 % jitter, and a
 * receiver's `Retry-After` honoured within [scheduled, 2 × scheduled]. Pure: randomness and time are passed in.
 */

/** A float in [0, 1), like Math.random. */
export type Random = () => number

export const JITTER = 0.2

/** `ms` moved by up to ±20 %: random 0 → −20 %, 0.5 → exact, 1 → +20 %. */
export function withJitter(ms: number, random: Random): number {
  return Math.round(ms * (1 + (random() * 2 - 1) * JITTER))
}

/**
 * The delay before automatic retry number `retryIndex + 1`, or undefined once the schedule is exhausted.
 * `scheduleSeconds[0]` follows the first (immediate) try.
 */
export function retryDelayMs(
  scheduleSeconds: readonly number[],
  retryIndex: number,
  random: Random,
): number | undefined {
  const seconds = scheduleSeconds[retryIndex]
  if (seconds === undefined) return undefined
  return withJitter(seconds * 1000, random)
}

/** Receivers ask for a pause with 429 Too Many Requests or 503 Service Unavailable. */
export function asksForPause(code: number): boolean {
  return code === 429 || code === 503
}

/** `Retry-After` as milliseconds from `nowMs`: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return undefined
  return Math.max(0, at - nowMs)
}

/** The receiver's wish, kept within [scheduled, 2 × scheduled] so it can neither hammer us nor stall us. */
export function honourRetryAfter(scheduledMs: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs === undefined) return scheduledMs
  return Math.min(Math.max(retryAfterMs, scheduledMs), 2 * scheduledMs)
}
