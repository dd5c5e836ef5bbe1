import { describe, expect, it } from 'vitest'
import { honourRetryAfter, parseRetryAfterMs, retryDelayMs, withJitter } from '../../src/domain/retry-schedule.js'
import { matchesEventType, signingSecrets } from '../../src/domain/webhook.js'
import {
  decideAfterAttempt,
  type AttemptResult,
  type DeliveryContext,
  type RetryPolicy,
} from '../../src/domain/webhook-delivery.js'

const NOW = Date.parse('2026-01-01T00:00:00.000Z')
const SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]
const policy = (random = 0.5, disableAfter = 100): RetryPolicy => ({
  scheduleSeconds: SCHEDULE,
  disableAfter,
  random: () => random,
})
const ctx = (over: Partial<DeliveryContext> = {}): DeliveryContext => ({
  status: 'pending',
  held: false,
  nextAttemptAtMs: NOW,
  retriesScheduled: 0,
  webhookEnabled: true,
  webhookDeleted: false,
  consecutiveFailures: 0,
  manual: false,
  ...over,
})
const code = (c: number, retryAfter?: string): AttemptResult => ({ kind: 'response', code: c, retryAfter })
const network: AttemptResult = { kind: 'error', message: 'connect ECONNREFUSED' }

describe('retry schedule', () => {
  it.each([
    [0, 0, 4000],
    [0, 0.5, 5000],
    [0, 1, 6000],
    [1, 0.5, 300_000],
    [6, 0, 28_800_000],
    [6, 1, 43_200_000],
  ])('retry %i with random %f waits %i ms (±20 %% jitter)', (index, random, ms) => {
    // Scenario: the default schedule of docs/webhooks.md; random 0 → −20 %, 0.5 → exact, 1 → +20 %.
    expect(retryDelayMs(SCHEDULE, index, () => random)).toBe(ms)
  })

  it('ends after the last entry', () => {
    // Scenario: seven retries scheduled already → no eighth.
    expect(retryDelayMs(SCHEDULE, 7, Math.random)).toBeUndefined()
  })

  it('stays within ±20 % for any random value', () => {
    // Scenario: a sweep of random values → every delay within [0.8, 1.2] × nominal.
    for (let r = 0; r < 1; r += 0.01) {
      const ms = withJitter(10_000, () => r)
      expect(ms).toBeGreaterThanOrEqual(8000)
      expect(ms).toBeLessThanOrEqual(12_000)
    }
  })

  it.each([
    ['120', 120_000],
    ['0', 0],
    [new Date(NOW + 30_000).toUTCString(), 30_000],
    [new Date(NOW - 30_000).toUTCString(), 0],
    ['soon', undefined],
    ['1.5', undefined],
    [undefined, undefined],
  ])('reads Retry-After %s as %s ms', (value, ms) => {
    // Scenario: delta-seconds or an HTTP date (RFC 9110); anything else is ignored.
    expect(parseRetryAfterMs(value, NOW)).toBe(ms)
  })

  it.each([
    [5000, undefined, 5000],
    [5000, 1000, 5000],
    [5000, 7000, 7000],
    [5000, 60_000, 10_000],
  ])('clamps Retry-After: scheduled %i, asked %s → %i', (scheduled, asked, ms) => {
    // Scenario: the receiver's wish within [scheduled, 2 × scheduled].
    expect(honourRetryAfter(scheduled, asked)).toBe(ms)
  })
})

describe('after an attempt', () => {
  it.each<[string, AttemptResult, Partial<DeliveryContext>, number, Record<string, unknown>]>([
    [
      '2xx delivers and resets the streak',
      code(204),
      { consecutiveFailures: 7 },
      100,
      { status: 'success', delivery: 'delivered', willRetry: false, consecutiveFailures: 0, disable: null },
    ],
    [
      '500 schedules the next retry',
      code(500),
      {},
      100,
      {
        status: 'failed',
        delivery: 'pending',
        nextAttemptAtMs: NOW + 5000,
        willRetry: true,
        retriesScheduled: 1,
        consecutiveFailures: 1,
      },
    ],
    [
      'a network error is a failure',
      network,
      { retriesScheduled: 1 },
      100,
      { delivery: 'pending', nextAttemptAtMs: NOW + 300_000, willRetry: true, retriesScheduled: 2 },
    ],
    ['503 with Retry-After is honoured', code(503, '3600'), {}, 100, { nextAttemptAtMs: NOW + 10_000 }],
    [
      '410 disables and holds',
      code(410),
      {},
      100,
      { delivery: 'pending', held: true, willRetry: false, nextAttemptAtMs: null, disable: 'gone' },
    ],
    [
      'the Nth failure in a row disables',
      code(500),
      { consecutiveFailures: 2 },
      3,
      { held: true, willRetry: false, disable: 'consecutive_failures', consecutiveFailures: 3 },
    ],
    [
      'a failure on a webhook disabled meanwhile holds',
      code(500),
      { webhookEnabled: false },
      100,
      { held: true, willRetry: false, disable: null },
    ],
    [
      'a success on a disabled webhook still delivers',
      code(200),
      { webhookEnabled: false },
      100,
      { delivery: 'delivered', held: false },
    ],
    [
      'an exhausted schedule fails the delivery',
      code(500),
      { retriesScheduled: 7 },
      100,
      { delivery: 'failed', willRetry: false, nextAttemptAtMs: null },
    ],
    [
      'a deleted webhook cancels',
      code(500),
      { webhookDeleted: true },
      100,
      { delivery: 'cancelled', willRetry: false, disable: null },
    ],
    [
      'a manual failure keeps the schedule',
      code(500),
      { manual: true, nextAttemptAtMs: NOW + 99 },
      100,
      { delivery: 'pending', nextAttemptAtMs: NOW + 99, willRetry: true, retriesScheduled: 0 },
    ],
    [
      'a manual failure of a failed delivery retries nothing',
      code(500),
      { manual: true, status: 'failed', nextAttemptAtMs: null },
      100,
      { delivery: 'failed', willRetry: false },
    ],
  ])('%s', (_name, result, context, disableAfter, expected) => {
    // Scenario: the pure decision the store commits with each attempt (docs/webhooks.md).
    expect(decideAfterAttempt(result, ctx(context), policy(0.5, disableAfter), NOW)).toMatchObject(expected)
  })
})

describe('matching and signing secrets', () => {
  it.each([
    [['*'], 'lock.locked', true],
    [['lock.*'], 'lock.locked', true],
    [['lock.*'], 'device.connected', false],
    [['device.added'], 'device.added', true],
    [['device.added'], 'device.deleted', false],
  ])('%j matches %s: %s', (patterns, type, expected) => {
    // Scenario: `*`, prefixes and exact types.
    expect(matchesEventType(patterns, type)).toBe(expected)
  })

  it('signs with the previous secret only until it expires', () => {
    // Scenario: a rotation 24 h overlap.
    const webhook = {
      secret: 'whsec_new',
      previous_secret: 'whsec_old',
      previous_secret_expires_at: new Date(NOW + 1000).toISOString(),
    }
    expect(signingSecrets(webhook, NOW)).toEqual(['whsec_new', 'whsec_old'])
    expect(signingSecrets(webhook, NOW + 1000)).toEqual(['whsec_new'])
  })
})
