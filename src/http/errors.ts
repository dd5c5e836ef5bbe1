import { InvalidCursorError } from '../domain/cursor.js'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { LatchkeyError, UnavailableError, type ValidationErrors } from '../domain/errors.js'

/**
 * What the three API surfaces share about errors: the dotted path of a validation issue, and the mapping of anything
 * thrown (by a route, a hook, fastify itself) to a LatchkeyError of the one table in src/domain/errors.ts. Each
 * surface only shapes the body.
 */

export interface Issue {
  path: string
  message: string
}

/** A zod issue path (`['a', 0, 'b']`) or a JSON-pointer-like `instancePath` (`/a/0/b`) as `a.0.b`. */
export function validationPath(path: string | readonly PropertyKey[]): string {
  if (typeof path !== 'string') return path.map(String).join('.')
  return path.replace(/^\//, '').replaceAll('/', '.')
}

/** The issues of a fastify validation error (fastify-type-provider-zod fills `instancePath` from zod's path). */
export function fastifyIssues(error: Partial<FastifyError>): Issue[] {
  return (error.validation ?? []).map((v) => ({
    path: validationPath(v.instancePath),
    message: v.message ?? 'invalid',
  }))
}

export function validationErrors(issues: Issue[]): ValidationErrors {
  const out: ValidationErrors = {}
  for (const { path, message } of issues) {
    const key = path || '_root'
    ;(out[key] ??= { _errors: [] })._errors.push(message)
  }
  return out
}

/** One invalid_input error for a list of issues: the first names the message, all of them the details. */
export function invalidInput(issues: Issue[], where = 'body'): LatchkeyError {
  const first = issues[0]
  return new LatchkeyError('invalid_input', first ? `${first.path || where}: ${first.message}` : undefined, {
    validation_errors: validationErrors(issues),
  })
}

/**
 * Maps anything thrown to a LatchkeyError. Fastify's own client errors (a bad URL, a body too large, a bad content
 * type) keep their message; anything unknown becomes a detail-free 500 with the original as its cause.
 */
export function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error
  // The store refuses a cursor it did not issue; every surface answers it as bad input (docs/api.md#pagination).
  if (error instanceof InvalidCursorError) return new LatchkeyError('invalid_input', 'invalid cursor')
  if (error instanceof UnavailableError) return new LatchkeyError('service_unavailable', error.message)
  const fastifyError = error as Partial<FastifyError>
  if (fastifyError.validation) return invalidInput(fastifyIssues(fastifyError), fastifyError.validationContext)
  const status = fastifyError.statusCode
  if (status === 413) return new LatchkeyError('payload_too_large')
  if (status === 429) return new LatchkeyError('rate_limited')
  if (status !== undefined && status >= 400 && status < 500) {
    return new LatchkeyError('invalid_input', fastifyError.message || undefined)
  }
  return new LatchkeyError('internal_server_error', undefined, undefined, { cause: error })
}

/**
 * What every error reply carries whatever its surface: the request id (also on replies fastify answers before any
 * hook ran, such as a bad URL), `Retry-After` on a 429, and a log line for an internal error.
 */
export function errorReply(error: unknown, request: FastifyRequest, reply: FastifyReply): LatchkeyError {
  const mapped = toLatchkeyError(error)
  reply.header('seam-request-id', request.id)
  if (mapped.details?.retry_after_s !== undefined) reply.header('retry-after', String(mapped.details.retry_after_s))
  if (mapped.code === 'internal_server_error') request.log.error({ err: error }, 'request failed')
  reply.status(mapped.status)
  return mapped
}
