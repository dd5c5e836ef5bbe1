import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendConnectError } from './connect/errors.js'
import { sendOutpostError } from './outpost/errors.js'
import { sendProblem } from './v1/errors.js'

type ErrorSender = (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply

/** The path of a request, without its query string. */
export function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? ''
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`)
}

/**
 * The error shape of the surface a URL belongs to, by its prefix: for errors fastify raises before any route is
 * known (a bad URL), so that every surface keeps its shape for every 4xx.
 */
export function errorSenderFor(request: FastifyRequest): ErrorSender {
  const path = pathOf(request)
  if (under(path, '/api/v1')) return sendOutpostError
  if (under(path, '/v1')) return sendProblem
  return sendConnectError
}
