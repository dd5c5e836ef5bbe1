import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { InvalidCursorError } from '../../domain/cursor.js'
import { LatchkeyError } from '../../domain/errors.js'
import { ERROR_STATUS } from '../error-status.js'

type ValidationErrors = Record<string, { _errors: string[] }>

export function validationErrors(issues: Array<{ path: string; message: string }>): ValidationErrors {
  const out: ValidationErrors = {}
  for (const { path, message } of issues) {
    const key = path || '_root'
    ;(out[key] ??= { _errors: [] })._errors.push(message)
  }
  return out
}

/** Maps anything thrown in a route to a LatchkeyError; unknown failures become a detail-free 500. */
export function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error
  if (error instanceof InvalidCursorError) {
    return new LatchkeyError('invalid_input', 'page_cursor is not a cursor this server issued', {
      validation_errors: { page_cursor: { _errors: ['invalid cursor'] } },
    })
  }
  const fastifyError = error as Partial<FastifyError>
  if (fastifyError.validation) {
    const issues = fastifyError.validation.map((v) => ({
      path: v.instancePath.replace(/^\//, '').replaceAll('/', '.'),
      message: v.message ?? 'invalid',
    }))
    const first = issues[0]
    return new LatchkeyError('invalid_input', first ? `${first.path || 'body'}: ${first.message}` : 'invalid input', {
      validation_errors: validationErrors(issues),
    })
  }
  if (fastifyError.statusCode === 413) return new LatchkeyError('payload_too_large', 'Request body too large')
  if (fastifyError.statusCode === 415 || fastifyError.statusCode === 400) {
    return new LatchkeyError('invalid_input', fastifyError.message ?? 'invalid request')
  }
  return new LatchkeyError('internal_server_error', 'Internal server error', undefined, { cause: error })
}

export function sendConnectError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mapped = toLatchkeyError(error)
  const status = ERROR_STATUS[mapped.code]
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  return reply.status(status).send({
    error: {
      type: mapped.code,
      message: mapped.message,
      ...(mapped.details?.validation_errors ? { validation_errors: mapped.details.validation_errors } : {}),
      request_id: request.id,
    },
    ok: false,
  })
}
