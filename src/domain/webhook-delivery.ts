import { assertNever } from './assert.js'
import { asksForPause, honourRetryAfter, parseRetryAfterMs, retryDelayMs, type Random } from './retry-schedule.js'
import type { WebhookDisabledReason } from './webhook.js'

/**
 * What happens to a delivery (one event × one webhook) after an HTTP attempt (docs/webhooks.md). Pure: the store
 * loads the current state inside its write transaction, this decides, the store commits the decision with the attempt.
 */

/** `pending`: an automatic attempt is due or scheduled (or held while the webhook is disabled). */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled'

/**
 * Why an attempt failed, by the stage it reached. Every kind is recorded as a failed attempt and counted toward
 * WEBHOOK_DISABLE_AFTER, and all but a 410 are retried on the schedule: see `disablesAtOnce` and the table in
 * docs/webhooks.md.
 */
export type SendFailure =
  /** The stored URL cannot be used (a bad escape in its user info, not http(s)): nothing sent. `invalid URL: …` */
  | { stage: 'invalid_url'; message: string }
  /** The SSRF guard refused the address (an IP literal, or what the name resolved to): nothing sent. `refused: …` */
  | { stage: 'refused'; message: string }
  /** DNS, connect, TLS, reset: no status line arrived. The client's error text, e.g. `connect ECONNREFUSED …`. */
  | { stage: 'network'; message: string; code?: string | undefined }
  /** No status line within WEBHOOK_TIMEOUT_MS. `timed out after …` */
  | { stage: 'timeout'; message: string }
  /** A status line other than 2xx (3xx included: redirects are not followed). */
  | { stage: 'http_status'; code: number; retryAfter?: string | undefined }
  /** Anything else that threw while the request was prepared or sent (signing, the client). `internal error: …` */
  | { stage: 'internal'; message: string }

export type FailureStage = SendFailure['stage']

export type AttemptResult = { kind: 'success'; code: number } | { kind: 'failure'; failure: SendFailure }

export interface DeliveryContext {
  status: DeliveryStatus
  held: boolean
  nextAttemptAtMs: number | null
  /** Automatic retries scheduled so far: the index into the retry schedule. */
  retriesScheduled: number
  webhookEnabled: boolean
  webhookDeleted: boolean
  consecutiveFailures: number
  manual: boolean
}

export interface RetryPolicy {
  scheduleSeconds: readonly number[]
  /** Consecutive failed attempts after which the webhook is disabled. */
  disableAfter: number
  random: Random
}

/**
 * What one attempt does to its delivery. `failures` is the webhook's count of consecutive failed attempts after this
 * one; `disable` is set when this attempt disables the webhook (then every pending delivery of it is held).
 */
export type DeliveryDecision =
  /** A 2xx: delivered; the webhook's failure count resets. */
  | { kind: 'delivered' }
  /** Pending: the next automatic attempt is at `at` (a manual attempt keeps the one already scheduled). */
  | { kind: 'retry'; at: number; retriesScheduled: number; failures: number }
  /** Pending, held: the webhook is disabled (before or by this attempt) and the delivery waits until it is enabled. */
  | { kind: 'held'; failures: number; disable: WebhookDisabledReason | null }
  /** No automatic attempt left: the schedule is exhausted (or a manual attempt failed on a failed delivery). */
  | { kind: 'failed'; failures: number; disable: WebhookDisabledReason | null }
  /** The webhook was deleted: the delivery is dropped. */
  | { kind: 'cancelled'; failures: number }
  /** An attempt outside the schedule (manual, or overtaken by one) failed on a delivered delivery: it stays so. */
  | { kind: 'still_delivered'; failures: number; disable: WebhookDisabledReason | null }

/**
 * The columns one attempt writes: derived from its decision by `attemptRecord`, never built by hand, and committed
 * by the store as they are. `outcome` is the decision itself.
 */
export interface AttemptDecision {
  outcome: DeliveryDecision
  status: 'success' | 'failed'
  delivery: DeliveryStatus
  held: boolean
  nextAttemptAtMs: number | null
  /** Another automatic attempt was scheduled after this one. */
  willRetry: boolean
  retriesScheduled: number
  consecutiveFailures: number
  /** Set when this attempt disables the webhook. */
  disable: WebhookDisabledReason | null
}

/**
 * The failure policy, one line per stage: which failures disable the webhook at once, whatever its count. Every
 * other failure is retried on the schedule and counts toward WEBHOOK_DISABLE_AFTER, the SSRF refusal included: it
 * means the webhook's host now resolves to an address it may not reach, which its owner (a new URL or DNS record) or
 * the operator (WEBHOOK_ALLOWED_CIDRS) can fix while the schedule runs; a webhook nobody fixes is disabled and its
 * deliveries held, not lost. The same holds for an unusable stored URL (`PUT /webhooks/update` mends it).
 */
export function disablesAtOnce(failure: SendFailure): WebhookDisabledReason | null {
  switch (failure.stage) {
    case 'http_status':
      return failure.code === 410 ? 'gone' : null
    case 'invalid_url':
    case 'refused':
    case 'network':
    case 'timeout':
    case 'internal':
      return null
    default:
      return assertNever(failure)
  }
}

/** The text recorded as the attempt's error: null when a status line arrived (its code is recorded instead). */
export function failureMessage(failure: SendFailure): string | null {
  switch (failure.stage) {
    case 'http_status':
      return null
    case 'invalid_url':
    case 'refused':
    case 'network':
    case 'timeout':
    case 'internal':
      return failure.message
    default:
      return assertNever(failure)
  }
}

/**
 * The stage at which a recorded attempt failed, read back from what it records (its status code and error text:
 * every stage's text has its own start, see `SendFailure`), or null for a success.
 */
export function recordedFailureStage(
  status: 'success' | 'failed',
  responseCode: number | null,
  errorMessage: string | null,
): FailureStage | null {
  if (status === 'success') return null
  if (responseCode !== null) return 'http_status'
  for (const [prefix, stage] of MESSAGE_PREFIXES) if (errorMessage?.startsWith(prefix)) return stage
  return 'network'
}

/** How the error text of each stage without a status line starts; anything else is a network error. */
const MESSAGE_PREFIXES: ReadonlyArray<readonly [string, FailureStage]> = [
  ['timed out after ', 'timeout'],
  ['refused: ', 'refused'],
  ['invalid URL: ', 'invalid_url'],
  ['internal error: ', 'internal'],
]

/** A status line: 2xx is success, anything else a failure at the `http_status` stage. */
export function responseResult(code: number, retryAfter?: string): AttemptResult {
  if (code >= 200 && code < 300) return { kind: 'success', code }
  return { kind: 'failure', failure: { stage: 'http_status', code, retryAfter } }
}

function disableReason(
  failure: SendFailure,
  ctx: DeliveryContext,
  failures: number,
  policy: RetryPolicy,
): WebhookDisabledReason | null {
  if (!ctx.webhookEnabled || ctx.webhookDeleted) return null
  return disablesAtOnce(failure) ?? (failures >= policy.disableAfter ? 'consecutive_failures' : null)
}

/** The receiver's wish for a pause (429 or 503 with Retry-After), in ms from `nowMs`. */
function pauseAsked(failure: SendFailure, nowMs: number): number | undefined {
  if (failure.stage !== 'http_status' || !asksForPause(failure.code)) return undefined
  return parseRetryAfterMs(failure.retryAfter, nowMs)
}

export function decideAfterAttempt(
  result: AttemptResult,
  ctx: DeliveryContext,
  policy: RetryPolicy,
  nowMs: number,
): DeliveryDecision {
  if (result.kind === 'success') return { kind: 'delivered' }
  const { failure } = result
  const failures = ctx.consecutiveFailures + 1
  if (ctx.webhookDeleted) return { kind: 'cancelled', failures }
  const disable = disableReason(failure, ctx, failures, policy)
  const enabledAfter = ctx.webhookEnabled && disable === null
  // A manual attempt leaves the automatic schedule as it was. An automatic one on a delivery settled meanwhile (a
  // manual attempt delivered it while this one was in flight) must not revive it either.
  if (ctx.manual || ctx.status !== 'pending') return keepingSchedule(ctx, failures, disable, enabledAfter, nowMs)
  // Disabled (before or by this attempt): held, not dropped, until the webhook is enabled again.
  if (!enabledAfter) return { kind: 'held', failures, disable }
  const scheduled = retryDelayMs(policy.scheduleSeconds, ctx.retriesScheduled, policy.random)
  if (scheduled === undefined) return { kind: 'failed', failures, disable: null }
  const at = nowMs + honourRetryAfter(scheduled, pauseAsked(failure, nowMs))
  return { kind: 'retry', at, retriesScheduled: ctx.retriesScheduled + 1, failures }
}

/** A failure that leaves the delivery's state and schedule as they were, except that a disabled webhook holds it. */
function keepingSchedule(
  ctx: DeliveryContext,
  failures: number,
  disable: WebhookDisabledReason | null,
  enabledAfter: boolean,
  nowMs: number,
): DeliveryDecision {
  switch (ctx.status) {
    case 'pending':
      if (ctx.held || !enabledAfter) return { kind: 'held', failures, disable }
      return {
        kind: 'retry',
        at: ctx.nextAttemptAtMs ?? nowMs,
        retriesScheduled: ctx.retriesScheduled,
        failures,
      }
    case 'failed':
      return { kind: 'failed', failures, disable }
    case 'delivered':
      return { kind: 'still_delivered', failures, disable }
    case 'cancelled':
      return { kind: 'cancelled', failures }
    default:
      return assertNever(ctx.status)
  }
}

/** The columns the store commits for `decision`, taken by the attempt on a delivery in state `ctx`. */
export function attemptRecord(decision: DeliveryDecision, ctx: DeliveryContext): AttemptDecision {
  const kept = ctx.retriesScheduled
  switch (decision.kind) {
    case 'delivered':
      return record(decision, 'success', 'delivered', false, null, false, kept, 0, null)
    case 'retry': {
      const { at, retriesScheduled, failures } = decision
      return record(decision, 'failed', 'pending', false, at, true, retriesScheduled, failures, null)
    }
    case 'held':
      return record(decision, 'failed', 'pending', true, null, false, kept, decision.failures, decision.disable)
    case 'failed':
      return record(decision, 'failed', 'failed', false, null, false, kept, decision.failures, decision.disable)
    case 'cancelled':
      return record(decision, 'failed', 'cancelled', false, null, false, kept, decision.failures, null)
    case 'still_delivered':
      return record(decision, 'failed', 'delivered', false, null, false, kept, decision.failures, decision.disable)
    default:
      return assertNever(decision)
  }
}

// Positional on purpose: this runs once per delivery attempt, and object spreads measured slow on that path. Only
// `attemptRecord` calls it, one arm of the decision at a time.
function record(
  outcome: DeliveryDecision,
  status: AttemptDecision['status'],
  delivery: DeliveryStatus,
  held: boolean,
  nextAttemptAtMs: number | null,
  willRetry: boolean,
  retriesScheduled: number,
  consecutiveFailures: number,
  disable: WebhookDisabledReason | null,
): AttemptDecision {
  return { outcome, status, delivery, held, nextAttemptAtMs, willRetry, retriesScheduled, consecutiveFailures, disable }
}
