import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { InvalidCursorError } from '../../domain/cursor.js'
import { LatchkeyError } from '../../domain/errors.js'
import { ERROR_STATUS } from '../error-status.js'

/**
 * Errors of the v1 dialect (docs/deliveries.md): every 4xx and 5xx is `application/problem+json` (RFC 9457)
 * `{type, title, status, detail, instance}`, with `instance` the request id (also sent as `seam-request-id`).
 * `type` is `about:blank`: the status says it all, and `title` is its reason phrase.
 */
export const PROBLEM_JSON = 'application/problem+json'

function toProblem(error: unknown): { status: number; detail: string } {
  if (error instanceof InvalidCursorError) return { status: 400, detail: error.message }
  if (error instanceof LatchkeyError) {
    const status = ERROR_STATUS[error.code]
    return { status, detail: status >= 500 ? 'Internal server error.' : error.message }
  }
  const fastifyError = error as Partial<FastifyError>
  const first = fastifyError.validation?.[0]
  if (first) {
    const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.')
    return {
      status: 400,
      detail: `${path || fastifyError.validationContext || 'request'}: ${first.message ?? 'invalid'}`,
    }
  }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500)
    return { status, detail: fastifyError.message ?? 'Bad request.' }
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
