import type { FastifyRequest } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /** `PUBLIC_URL` without a trailing slash, when set. */
    publicOrigin: string | undefined
  }
}

/** `PUBLIC_URL` as the base of absolute links: its origin and path prefix, without a trailing slash. */
export function publicOrigin(publicUrl: string | undefined): string | undefined {
  if (publicUrl === undefined) return undefined
  const url = new URL(publicUrl)
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
/** A DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port: what a Host header may hold. */
const VALID_HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*\\.?|\\[[0-9A-Fa-f:.]+\\])(?::\\d{1,5})?$`)

export function isValidHost(host: string): boolean {
  if (host.length > 260 || !VALID_HOST.test(host)) return false
  try {
    new URL(`http://${host}/`)
    return true
  } catch {
    return false
  }
}

/**
 * The base that links to this server are built on: `PUBLIC_URL` when set; else the request's own scheme and Host
 * when the Host is a valid host; else nothing, and the link is relative (`/devices/list?…`). A Host header is
 * the client's to choose, so it is never echoed unless it is a plain host.
 */
export function linkBase(request: FastifyRequest): string {
  const configured = request.server.publicOrigin
  if (configured !== undefined) return configured
  // An HTTP/1.0 request may carry no Host at all.
  const host: string | undefined = request.host
  return typeof host === 'string' && isValidHost(host) ? `${request.protocol}://${host}` : ''
}
