import { createHmac } from 'node:crypto'

/**
 * Standard Webhooks / Svix signatures (docs/webhooks.md): `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)),
 * where the key is the base64-decoded part of the secret after `whsec_`. Several secrets (a rotation) give
 * space-separated signatures; receivers accept the request if any one verifies.
 */

const SECRET_PREFIX = 'whsec_'
const keys = new Map<string, Buffer>()

function keyOf(secret: string): Buffer {
  let key = keys.get(secret)
  if (!key) {
    if (keys.size > 10_000) keys.clear()
    key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64')
    keys.set(secret, key)
  }
  return key
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

export function signatureHeader(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets.map((secret) => sign(secret, id, timestamp, body)).join(' ')
}

/** Both header sets on every attempt, so `standardwebhooks` and `@seamapi/webhook` (svix) both verify it. */
export function deliveryHeaders(id: string, timestamp: number, signature: string): Record<string, string> {
  const ts = String(timestamp)
  return {
    'content-type': 'application/json',
    'user-agent': 'latchkey-webhooks/0.1',
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': signature,
    'svix-id': id,
    'svix-timestamp': ts,
    'svix-signature': signature,
  }
}
