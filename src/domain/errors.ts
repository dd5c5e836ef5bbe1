/**
 * The one table of errors the application raises on purpose: each code with its HTTP status and default message.
 * Every API surface answers with this status and only shapes the body (docs/api.md, "Errors"). A throw site that
 * has nothing to add uses the default message.
 */
export const ERRORS = {
  invalid_input: { status: 400, message: 'Invalid input' },
  action_not_supported: { status: 400, message: 'This device does not support the action' },
  // A manual retry the destination cannot take (disabled, no longer subscribed).
  retry_not_allowed: { status: 400, message: 'The destination cannot take a retry' },
  unauthorized: {
    status: 401,
    message: 'Unauthorized: a valid API key or token is required (Authorization: Bearer …)',
  },
  not_found: { status: 404, message: 'No such route' },
  device_not_found: { status: 404, message: 'Device not found' },
  action_attempt_not_found: { status: 404, message: 'Action attempt not found' },
  event_not_found: { status: 404, message: 'Event not found' },
  webhook_not_found: { status: 404, message: 'Webhook not found' },
  workspace_not_found: { status: 404, message: 'Workspace not found' },
  api_key_not_found: { status: 404, message: 'API key not found' },
  delivery_not_found: { status: 404, message: 'Delivery not found' },
  idempotency_key_reused: { status: 409, message: 'The Idempotency-Key was used with another request' },
  payload_too_large: { status: 413, message: 'Request body too large' },
  rate_limited: { status: 429, message: 'Too many requests; retry after the Retry-After delay' },
  internal_server_error: { status: 500, message: 'Internal server error' },
  // A dependency (the database, the broker) cannot serve right now; the client may retry.
  service_unavailable: { status: 503, message: 'Service unavailable; retry later' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export type ValidationErrors = Record<string, { _errors: string[] }>

/**
 * A dependency (the database, the MQTT broker) cannot serve right now; retrying later may succeed. Adapters raise
 * their own subclasses; every API surface answers them 503 `service_unavailable` with their message.
 */
export class UnavailableError extends Error {}

export class LatchkeyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly details?: { validation_errors?: ValidationErrors; retry_after_s?: number },
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'LatchkeyError'
  }

  get status(): number {
    return ERRORS[this.code].status
  }
}

export function notFound(code: Extract<ErrorCode, `${string}_not_found`>, what: string): LatchkeyError {
  return new LatchkeyError(code, `${what} not found`)
}
