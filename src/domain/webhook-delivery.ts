import { asksForPause, honourRetryAfter, parseRetryAfterMs, retryDelayMs, type Random } from './retry-schedule.js'
import type { WebhookDisabledReason } from './webhook.js'

/**
 * What happens to a delivery (one event × one webhook) after an HTTP attempt (docs/webhooks.md). Pure: the store loads
 * the current state inside its write transaction, this decides, the store commits the decision with the attempt.
 */

/** `pending`: an automatic attempt is due or scheduled (or held while the webhook is disabled). */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled'

export type AttemptResult =
  { kind: 'response'; code: number; retryAfter?: string | undefined } | { kind: 'error'; message: string }

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

export interface AttemptDecision {
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

export function isSuccess(result: AttemptResult): boolean {
  return result.kind === 'response' && result.code >= 200 && result.code < 300
}

function disableReason(
  result: AttemptResult,
  ctx: DeliveryContext,
  failures: number,
  policy: RetryPolicy,
): WebhookDisabledReason | null {
  if (!ctx.webhookEnabled || ctx.webhookDeleted) return null
  if (result.kind === 'response' && result.code === 410) return 'gone'
  return failures >= policy.disableAfter ? 'consecutive_failures' : null
}

export function decideAfterAttempt(
  result: AttemptResult,
  ctx: DeliveryContext,
  policy: RetryPolicy,
  nowMs: number,
): AttemptDecision {
  if (isSuccess(result)) return outcome('success', 'delivered', false, null, false, ctx.retriesScheduled, 0, null)
  const failures = ctx.consecutiveFailures + 1
  const disable = disableReason(result, ctx, failures, policy)
  if (ctx.webhookDeleted)
    return outcome('failed', 'cancelled', false, null, false, ctx.retriesScheduled, failures, disable)
  const enabledAfter = ctx.webhookEnabled && disable === null
  if (ctx.manual) {
    // A manual attempt leaves the automatic schedule as it was; a webhook it disables holds the delivery.
    const held = ctx.held || (!enabledAfter && ctx.status === 'pending')
    const next = held ? null : ctx.nextAttemptAtMs
    return outcome(
      'failed',
      ctx.status,
      held,
      next,
      ctx.status === 'pending' && !held,
      ctx.retriesScheduled,
      failures,
      disable,
    )
  }
  // Disabled (before or by this attempt): held, not dropped, until the webhook is enabled again.
  if (!enabledAfter) return outcome('failed', 'pending', true, null, false, ctx.retriesScheduled, failures, disable)
  const scheduled = retryDelayMs(policy.scheduleSeconds, ctx.retriesScheduled, policy.random)
  if (scheduled === undefined)
    return outcome('failed', 'failed', false, null, false, ctx.retriesScheduled, failures, disable)
  const wish =
    result.kind === 'response' && asksForPause(result.code) ? parseRetryAfterMs(result.retryAfter, nowMs) : undefined
  return outcome(
    'failed',
    'pending',
    false,
    nowMs + honourRetryAfter(scheduled, wish),
    true,
    ctx.retriesScheduled + 1,
    failures,
    disable,
  )
}

// Positional on purpose: this runs once per delivery attempt, and object spreads measured slow on that path.
function outcome(
  status: AttemptDecision['status'],
  delivery: DeliveryStatus,
  held: boolean,
  nextAttemptAtMs: number | null,
  willRetry: boolean,
  retriesScheduled: number,
  consecutiveFailures: number,
  disable: WebhookDisabledReason | null,
): AttemptDecision {
  return { status, delivery, held, nextAttemptAtMs, willRetry, retriesScheduled, consecutiveFailures, disable }
}
