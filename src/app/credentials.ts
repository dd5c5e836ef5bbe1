import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

/** Every secret latchkey issues is made here, from crypto.randomBytes. */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

function base62(length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)]
  return out
}

/**
 * Workspace keys look like Seam's: `seam_` + base62. The SDK refuses keys starting with `seam_cst`, `seam_at` or
 * `seam_pk` (docs/api.md), so the first random character is drawn from the digits to keep clear of those prefixes.
 */
export function newApiKey(): string {
  return `seam_${BASE62[randomInt(10)]}${base62(31)}`
}

export function newAdminKey(): string {
  return `seam_admin_${base62(40)}`
}

/** Device MQTT password: 32 random bytes, base64url (docs/mqtt.md#credentials). */
export function newDeviceSecret(): string {
  return randomBytes(32).toString('base64url')
}

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

export function newServiceSecret(): string {
  return randomBytes(32).toString('base64url')
}

export function sha256(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex')
}

/** Compares two hex digests in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex')
  const right = Buffer.from(b, 'hex')
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right)
}
