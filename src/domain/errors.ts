/** Every error the application raises on purpose. Each surface maps a code to its own status and shape. */
export const ERROR_CODES = [
  'invalid_input',
  'unauthorized',
  'forbidden',
  'device_not_found',
  'action_attempt_not_found',
  'event_not_found',
  'webhook_not_found',
  'workspace_not_found',
  'api_key_not_found',
  'delivery_not_found',
  'retry_not_allowed',
  'idempotency_key_reused',
  'action_not_supported',
  'payload_too_large',
  'rate_limited',
  'not_ready',
  'internal_server_error',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

export class LatchkeyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: { validation_errors?: Record<string, { _errors: string[] }> },
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'LatchkeyError'
  }
}

export function notFound(code: Extract<ErrorCode, `${string}_not_found`>, what: string): LatchkeyError {
  return new LatchkeyError(code, `${what} not found`)
}
