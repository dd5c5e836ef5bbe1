import { describe, expect, it } from 'vitest'
import { honourRetryAfter, parseRetryAfterMs, retryDelayMs, withJitter } from '../../src/domain/retry-schedule.js'
import { matchesEventType, signingSecrets } from '../../src/domain/webhook.js'
import {
  attemptRecord,
  decideAfterAttempt,
  disablesAtOnce,
  failureMessage,
  recordedFailureStage,
  responseResult,
  type AttemptResult,
  type DeliveryContext,
  type DeliveryDecision,
  type RetryPolicy,
  type SendFailure,
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
const code = (c: number, retryAfter?: string): AttemptResult => responseResult(c, retryAfter)
const failed = (failure: SendFailure): AttemptResult => ({ kind: 'failure', failure })
const network = failed({ stage: 'network', message: 'connect ECONNREFUSED 203.0.113.9:443', code: 'ECONNREFUSED' })
const refused = failed({ stage: 'refused', message: 'refused: 127.0.0.1 is a loopback address' })
const invalidUrl = failed({ stage: 'invalid_url', message: 'invalid URL: not a valid URL' })
const timeout = failed({ stage: 'timeout', message: 'timed out after 15000 ms' })
const internal = failed({ stage: 'internal', message: 'internal error: boom' })

describe('retry schedule', () => {
  it.each([
    [0, 0, 4000],
    [0, 0.5, 5000],
    [0, 1, 6000],
    [1, 0.5, 300_000],
    [6, 0, 28_800_000],
    [6, 1, 43_200_000],
  ])('retry %i with random %f waits %i ms (±20 %% jitter)', (index, random, ms) => {
    // Scenario: the default schedule (docs/webhooks.md); random 0 → −20 %, 0.5 → exact, 1 → +20 %.
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
  // One row per arm of DeliveryDecision (and per way to reach it): the decision, then the columns the store writes.
  it.each<[string, AttemptResult, Partial<DeliveryContext>, number, DeliveryDecision]>([
    ['2xx delivers', code(204), { consecutiveFailures: 7 }, 100, { kind: 'delivered' }],
    ['a 2xx on a disabled webhook still delivers', code(200), { webhookEnabled: false }, 100, { kind: 'delivered' }],
    [
      'a manual 2xx delivers a failed delivery',
      code(200),
      { manual: true, status: 'failed' },
      100,
      { kind: 'delivered' },
    ],
    [
      '500 schedules the next retry',
      code(500),
      {},
      100,
      { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 },
    ],
    [
      'a network error is retried on the schedule',
      network,
      { retriesScheduled: 1, consecutiveFailures: 4 },
      100,
      { kind: 'retry', at: NOW + 300_000, retriesScheduled: 2, failures: 5 },
    ],
    ['a timeout is retried', timeout, {}, 100, { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 }],
    [
      'an SSRF refusal is retried',
      refused,
      {},
      100,
      { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 },
    ],
    [
      'an unusable URL is retried',
      invalidUrl,
      {},
      100,
      { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 },
    ],
    [
      'an internal error is retried',
      internal,
      {},
      100,
      { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 },
    ],
    [
      '503 with Retry-After is honoured (clamped to 2 × scheduled)',
      code(503, '3600'),
      {},
      100,
      { kind: 'retry', at: NOW + 10_000, retriesScheduled: 1, failures: 1 },
    ],
    [
      '429 with Retry-After within bounds is exact',
      code(429, '7'),
      {},
      100,
      { kind: 'retry', at: NOW + 7000, retriesScheduled: 1, failures: 1 },
    ],
    [
      'Retry-After on a 500 is ignored',
      code(500, '7'),
      {},
      100,
      { kind: 'retry', at: NOW + 5000, retriesScheduled: 1, failures: 1 },
    ],
    [
      'a manual failure keeps the schedule',
      code(500),
      { manual: true, nextAttemptAtMs: NOW + 99, retriesScheduled: 3 },
      100,
      { kind: 'retry', at: NOW + 99, retriesScheduled: 3, failures: 1 },
    ],
    ['410 disables and holds', code(410), {}, 100, { kind: 'held', failures: 1, disable: 'gone' }],
    [
      'the Nth failure in a row disables and holds',
      code(500),
      { consecutiveFailures: 2 },
      3,
      { kind: 'held', failures: 3, disable: 'consecutive_failures' },
    ],
    [
      'the Nth SSRF refusal in a row disables and holds',
      refused,
      { consecutiveFailures: 2 },
      3,
      { kind: 'held', failures: 3, disable: 'consecutive_failures' },
    ],
    [
      'the Nth unusable-URL failure in a row disables and holds',
      invalidUrl,
      { consecutiveFailures: 2 },
      3,
      { kind: 'held', failures: 3, disable: 'consecutive_failures' },
    ],
    [
      'a failure on a webhook disabled meanwhile holds',
      code(500),
      { webhookEnabled: false, consecutiveFailures: 5 },
      3,
      { kind: 'held', failures: 6, disable: null },
    ],
    [
      'a manual failure of a held delivery keeps it held',
      network,
      { manual: true, held: true, webhookEnabled: false, nextAttemptAtMs: null },
      100,
      { kind: 'held', failures: 1, disable: null },
    ],
    [
      'a manual 410 of a pending delivery disables and holds',
      code(410),
      { manual: true, nextAttemptAtMs: NOW + 99 },
      100,
      { kind: 'held', failures: 1, disable: 'gone' },
    ],
    [
      'an exhausted schedule fails the delivery',
      code(500),
      { retriesScheduled: 7 },
      100,
      { kind: 'failed', failures: 1, disable: null },
    ],
    [
      'a manual failure of a failed delivery retries nothing',
      code(500),
      { manual: true, status: 'failed', nextAttemptAtMs: null },
      100,
      { kind: 'failed', failures: 1, disable: null },
    ],
    [
      'a manual 410 of a failed delivery disables the webhook',
      code(410),
      { manual: true, status: 'failed', nextAttemptAtMs: null },
      100,
      { kind: 'failed', failures: 1, disable: 'gone' },
    ],
    ['a deleted webhook cancels', code(500), { webhookDeleted: true }, 100, { kind: 'cancelled', failures: 1 }],
    [
      'a 410 from a deleted webhook cancels and disables nothing',
      code(410),
      { webhookDeleted: true, webhookEnabled: false },
      1,
      { kind: 'cancelled', failures: 1 },
    ],
    [
      'a manual failure of a cancelled delivery leaves it cancelled',
      code(500),
      { manual: true, status: 'cancelled', nextAttemptAtMs: null },
      100,
      { kind: 'cancelled', failures: 1 },
    ],
    [
      'a manual failure of a delivered delivery leaves it delivered',
      timeout,
      { manual: true, status: 'delivered', nextAttemptAtMs: null },
      100,
      { kind: 'still_delivered', failures: 1, disable: null },
    ],
    [
      'an automatic failure of a delivery delivered meanwhile leaves it delivered',
      network,
      { status: 'delivered', nextAttemptAtMs: null, retriesScheduled: 2 },
      100,
      { kind: 'still_delivered', failures: 1, disable: null },
    ],
    [
      'a manual failure of a delivered delivery can still disable the webhook',
      code(500),
      { manual: true, status: 'delivered', nextAttemptAtMs: null, consecutiveFailures: 2 },
      3,
      { kind: 'still_delivered', failures: 3, disable: 'consecutive_failures' },
    ],
  ])('%s', (_name, result, context, disableAfter, expected) => {
    // Scenario: the pure decision the store commits with each attempt (docs/webhooks.md).
    expect(decideAfterAttempt(result, ctx(context), policy(0.5, disableAfter), NOW)).toEqual(expected)
  })

  const base = ctx({ retriesScheduled: 2, consecutiveFailures: 4 })
  it.each<[DeliveryDecision, Record<string, unknown>]>([
    [
      { kind: 'delivered' },
      {
        status: 'success',
        delivery: 'delivered',
        held: false,
        nextAttemptAtMs: null,
        willRetry: false,
        retriesScheduled: 2,
        consecutiveFailures: 0,
        disable: null,
      },
    ],
    [
      { kind: 'retry', at: NOW + 5, retriesScheduled: 3, failures: 5 },
      {
        status: 'failed',
        delivery: 'pending',
        held: false,
        nextAttemptAtMs: NOW + 5,
        willRetry: true,
        retriesScheduled: 3,
        consecutiveFailures: 5,
        disable: null,
      },
    ],
    [
      { kind: 'held', failures: 5, disable: 'gone' },
      {
        status: 'failed',
        delivery: 'pending',
        held: true,
        nextAttemptAtMs: null,
        willRetry: false,
        retriesScheduled: 2,
        consecutiveFailures: 5,
        disable: 'gone',
      },
    ],
    [
      { kind: 'failed', failures: 5, disable: null },
      {
        status: 'failed',
        delivery: 'failed',
        held: false,
        nextAttemptAtMs: null,
        willRetry: false,
        retriesScheduled: 2,
        consecutiveFailures: 5,
        disable: null,
      },
    ],
    [
      { kind: 'cancelled', failures: 5 },
      {
        status: 'failed',
        delivery: 'cancelled',
        held: false,
        nextAttemptAtMs: null,
        willRetry: false,
        retriesScheduled: 2,
        consecutiveFailures: 5,
        disable: null,
      },
    ],
    [
      { kind: 'still_delivered', failures: 5, disable: 'consecutive_failures' },
      {
        status: 'failed',
        delivery: 'delivered',
        held: false,
        nextAttemptAtMs: null,
        willRetry: false,
        retriesScheduled: 2,
        consecutiveFailures: 5,
        disable: 'consecutive_failures',
      },
    ],
  ])('%j is committed as these columns', (decision, columns) => {
    // Scenario: each arm maps to exactly one delivery state; only `retry` has a next attempt.
    expect(attemptRecord(decision, base)).toEqual({ outcome: decision, ...columns })
  })

  it.each<[SendFailure, string | null, string | null]>([
    [{ stage: 'http_status', code: 410 }, 'gone', null],
    [{ stage: 'http_status', code: 500 }, null, null],
    [{ stage: 'http_status', code: 302 }, null, null],
    [{ stage: 'refused', message: 'refused: x' }, null, 'refused: x'],
    [{ stage: 'invalid_url', message: 'invalid URL: x' }, null, 'invalid URL: x'],
    [{ stage: 'network', message: 'connect ECONNREFUSED' }, null, 'connect ECONNREFUSED'],
    [{ stage: 'timeout', message: 'timed out after 15000 ms' }, null, 'timed out after 15000 ms'],
    [{ stage: 'internal', message: 'internal error: boom' }, null, 'internal error: boom'],
  ])('failure %j: disables at once → %s, recorded error → %s', (failure, disables, message) => {
    // Scenario: the failure policy of docs/webhooks.md, one stage at a time; the stage reads back from the record.
    expect(disablesAtOnce(failure)).toBe(disables)
    expect(failureMessage(failure)).toBe(message)
    const code = failure.stage === 'http_status' ? failure.code : null
    expect(recordedFailureStage('failed', code, message)).toBe(failure.stage)
  })

  it('reads no failure stage from a success', () => {
    // Scenario: a 2xx attempt has no stage.
    expect(recordedFailureStage('success', 204, null)).toBeNull()
  })

  it.each([
    [200, 'success'],
    [299, 'success'],
    [199, 'failure'],
    [300, 'failure'],
    [410, 'failure'],
  ])('status %i is a %s', (status, kind) => {
    // Scenario: only 2xx delivers; redirects are not followed.
    expect(responseResult(status).kind).toBe(kind)
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
