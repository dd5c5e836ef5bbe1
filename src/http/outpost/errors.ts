import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errorReply, fastifyIssues } from '../errors.js'

/**
 * Errors of the Outpost dialect (docs/deliveries.md): `{message, data?}` with the status of the error table. As
 * Outpost does, a field that fails validation is 422 `validation error` with `data` naming it; a request that is
 * wrong as a whole (a bad cursor, `next` with `prev`, a disabled destination) is 400.
 */
export interface OutpostErrorBody {
  message: string
  data?: Record<string, string>
}

const CONTEXTS: Record<string, string> = { querystring: 'query', body: 'body', params: 'path' }

function fieldErrors(error: Partial<FastifyError>): Record<string, string> {
  const prefix = CONTEXTS[error.validationContext ?? ''] ?? 'request'
  const data: Record<string, string> = {}
  for (const { path, message } of fastifyIssues(error)) data[path ? `${prefix}.${path}` : prefix] ??= message
  return data
}

export function sendOutpostError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mapped = errorReply(error, request, reply)
  const fastifyError = error as Partial<FastifyError>
  if (fastifyError.validation) {
    return reply.status(422).send({ message: 'validation error', data: fieldErrors(fastifyError) })
  }
  return reply.send({ message: mapped.status >= 500 ? 'internal server error' : mapped.message })
}
