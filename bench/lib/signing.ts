import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/**
 * Webhook signatures as docs/webhooks.md defines them (Standard Webhooks / svix): `v1,` + base64(HMAC-SHA256(key,
 * `{id}.{timestamp}.{raw body}`)), key = base64-decoded secret after `whsec_`, several signatures space-separated.
 */

export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

function key(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64')
}

export function signature(secret: string, id: string, timestamp: string, body: string | Buffer): string {
  const mac = createHmac('sha256', key(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64')
  return `v1,${mac}`
}

/** The header set latchkey sends: both `webhook-*` and `svix-*`. */
export function signedHeaders(secret: string, id: string, body: string): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000))
  const sig = signature(secret, id, timestamp, body)
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': sig,
    'svix-id': id,
    'svix-timestamp': timestamp,
    'svix-signature': sig,
  }
}

/** True when one of the space-separated signatures matches one of the secrets. */
export function verify(secrets: readonly string[], headers: IncomingHttpHeaders, body: Buffer): boolean {
  const id = header(headers, 'webhook-id') ?? header(headers, 'svix-id')
  const timestamp = header(headers, 'webhook-timestamp') ?? header(headers, 'svix-timestamp')
  const sent = header(headers, 'webhook-signature') ?? header(headers, 'svix-signature')
  if (!id || !timestamp || !sent) return false
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false
  const offered = sent.split(' ').map((s) => Buffer.from(s))
  for (const secret of secrets) {
    const expected = Buffer.from(signature(secret, id, timestamp, body))
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return true
  }
  return false
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
