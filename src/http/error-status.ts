import type { ErrorCode } from '../domain/errors.js'

/**
 * The one error table: the HTTP status of every error code, on every API surface. Each surface only shapes the
 * body (Seam envelope, Outpost `{message}`, problem+json).
 */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  action_not_supported: 400,
  // A manual retry the destination cannot take (disabled, no longer subscribed): 400, docs/deliveries.md.
  retry_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  device_not_found: 404,
  action_attempt_not_found: 404,
  event_not_found: 404,
  webhook_not_found: 404,
  workspace_not_found: 404,
  api_key_not_found: 404,
  delivery_not_found: 404,
  idempotency_key_reused: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal_server_error: 500,
  not_ready: 503,
}
