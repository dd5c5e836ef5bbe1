import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { InvalidCursorError } from '../../domain/cursor.js'
import { LatchkeyError } from '../../domain/errors.js'
import { ERROR_STATUS } from '../error-status.js'

/**
 * Errors of the Outpost dialect (docs/deliveries.md): `{message, data?}`, status from the shared table. As Outpost does, a field
 * that fails validation is 422 `validation error` with `data` naming it; a request that is wrong as a whole (a bad
 * cursor, `next` with `prev`, a disabled destination) is 400.
 */
export interface OutpostErrorBody {
  message: string
  data?: Record<string, string>
}

const CONTEXTS: Record<string, string> = { querystring: 'query', body: 'body', params: 'path' }

function fieldErrors(error: Partial<FastifyError>): Record<string, string> {
  const prefix = CONTEXTS[error.validationContext ?? ''] ?? 'request'
  const data: Record<string, string> = {}
  for (const issue of error.validation ?? []) {
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.')
    data[path ? `${prefix}.${path}` : prefix] ??= issue.message ?? 'invalid'
  }
  return data
}

function toOutpostError(error: unknown): { status: number; body: OutpostErrorBody } {
  if (error instanceof InvalidCursorError) return { status: 400, body: { message: error.message } }
  if (error instanceof LatchkeyError) {
    const status = ERROR_STATUS[error.code]
    if (status >= 500) return { status, body: { message: 'internal server error' } }
    return { status, body: { message: error.message } }
  }
  const fastifyError = error as Partial<FastifyError>
  if (fastifyError.validation)
    return { status: 422, body: { message: 'validation error', data: fieldErrors(fastifyError) } }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500)
    return { status, body: { message: fastifyError.message ?? 'bad request' } }
  return { status: 500, body: { message: 'internal server error' } }
}

export function sendOutpostError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toOutpostError(error)
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  return reply.status(status).send(body)
}
