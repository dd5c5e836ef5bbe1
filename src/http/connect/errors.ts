import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorReply } from '../errors.js'

/** Errors of the Seam dialect: `{error: {type, message, validation_errors?, request_id}, ok: false}`. */
export function sendConnectError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mapped = errorReply(error, request, reply)
  return reply.send({
    error: {
      type: mapped.code,
      message: mapped.message,
      ...(mapped.details?.validation_errors ? { validation_errors: mapped.details.validation_errors } : {}),
      request_id: request.id,
    },
    ok: false,
  })
}
