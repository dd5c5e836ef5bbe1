import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { LatchkeyError, type ErrorCode } from '../../domain/errors.js'

/**
 * The one error table of the v1 dialect (SPEC §9): every 4xx and 5xx is `application/problem+json` (RFC 9457)
 * `{type, title, status, detail, instance}`, with `instance` the request id (also sent as `seam-request-id`).
 * `type` is `about:blank`: the status says it all, and `title` is its reason phrase.
 */
export const V1_STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  action_not_supported: 400,
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

export const PROBLEM_JSON = 'application/problem+json'

function toProblem(error: unknown): { status: number; detail: string } {
  if (error instanceof LatchkeyError) {
    const status = V1_STATUS[error.code]
    return { status, detail: status >= 500 ? 'Internal server error.' : error.message }
  }
  const fastifyError = error as Partial<FastifyError>
  const first = fastifyError.validation?.[0]
  if (first) {
    const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.')
    return { status: 400, detail: `${path || fastifyError.validationContext || 'request'}: ${first.message ?? 'invalid'}` }
  }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) return { status, detail: fastifyError.message ?? 'Bad request.' }
  return { status: 500, detail: 'Internal server error.' }
}

export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, detail } = toProblem(error)
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  return reply
    .status(status)
    .type(PROBLEM_JSON)
    .send({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, instance: request.id })
}
