import type { FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { errorReply } from '../errors.js'

/**
 * Errors of the v1 dialect (docs/deliveries.md): every 4xx and 5xx is `application/problem+json` (RFC 9457)
 * `{type, title, status, detail, instance}`, with `instance` the request id (also sent as `seam-request-id`).
 * `type` is `about:blank`: the status says it all, and `title` is its reason phrase.
 */
export const PROBLEM_JSON = 'application/problem+json'

export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mapped = errorReply(error, request, reply)
  const status = mapped.status
  const detail = status >= 500 ? 'Internal server error.' : mapped.message
  return reply
    .type(PROBLEM_JSON)
    .send({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, instance: request.id })
}
