import { attemptEventKey, type AttemptEvent, type AttemptPage } from '../../app/delivery-log.js'
import type { DeliveryAttempt } from '../../domain/delivery.js'
import type { Includes } from './query.js'

/**
 * Outpost-shaped objects (docs/deliveries.md), as its SDK validates them: ids strings, `status` success|failed, `code` a
 * string, times RFC 3339 with `Z` (attempts are stored that way).
 */

/** `code` when no response came back: the HTTP status otherwise. */
function errorCode(message: string | null): string {
  if (message?.startsWith('timed out')) return 'timeout'
  if (message?.startsWith('refused')) return 'refused'
  return 'network_error'
}

/** String-valued fields of the event that identify what it is about. */
function metadataOf(event: Record<string, unknown>): Record<string, string> {
  const metadata: Record<string, string> = {}
  for (const key of ['device_id', 'action_attempt_id', 'action_type']) {
    const value = event[key]
    if (typeof value === 'string') metadata[key] = value
  }
  return metadata
}

function presentEvent(attempt: DeliveryAttempt, found: AttemptEvent | undefined, withData: boolean) {
  if (!found) return null
  const event = found.event as unknown as Record<string, unknown>
  return {
    id: attempt.event_id,
    tenant_id: attempt.workspace_id,
    destination_id: attempt.webhook_id,
    topic: attempt.event_type,
    time: found.event.created_at,
    eligible_for_retry: found.eligible_for_retry,
    metadata: metadataOf(event),
    ...(withData ? { data: event } : {}),
  }
}

export function presentAttempt(attempt: DeliveryAttempt, include: Includes, events: Map<string, AttemptEvent>) {
  return {
    id: attempt.attempt_id,
    tenant_id: attempt.workspace_id,
    event_id: attempt.event_id,
    destination_id: attempt.webhook_id,
    destination_type: 'webhook',
    status: attempt.status,
    time: attempt.attempted_at,
    code: attempt.response_code === null ? errorCode(attempt.error_message) : String(attempt.response_code),
    attempt_number: attempt.attempt_number,
    manual: attempt.manual,
    ...(include.responseData
      ? {
          response_data: {
            status: attempt.response_code,
            headers: attempt.response_headers ?? {},
            body: attempt.response_body ?? '',
            duration_ms: attempt.duration_ms,
            ...(attempt.error_message !== null ? { error: attempt.error_message } : {}),
          },
        }
      : {}),
    ...(include.event ? { event: presentEvent(attempt, events.get(attemptEventKey(attempt)), include.eventData) } : {}),
  }
}

export function presentPage(
  page: AttemptPage,
  include: Includes,
  events: Map<string, AttemptEvent>,
  dir: 'asc' | 'desc',
  limit: number,
) {
  return {
    models: page.items.map((attempt) => presentAttempt(attempt, include, events)),
    pagination: { order_by: 'time', dir, limit, next: page.next, prev: page.prev },
  }
}
