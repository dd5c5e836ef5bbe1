import { EVENT_TYPES } from './events.js'

/** Why a webhook stopped receiving: its owner, a 410 Gone, or too many failures in a row (docs/webhooks.md). */
export type WebhookDisabledReason = 'manual' | 'gone' | 'consecutive_failures'

export interface Webhook {
  webhook_id: string
  workspace_id: string
  url: string
  /** Event types it receives; `*` matches every type, `lock.*` every type under `lock.`. */
  event_types: string[]
  /** `whsec_` + base64 of 32 random bytes. */
  secret: string
  /** The secret before the last rotation; it keeps signing alongside until `previous_secret_expires_at`. */
  previous_secret: string | null
  previous_secret_expires_at: string | null
  enabled: boolean
  disabled_reason: WebhookDisabledReason | null
  disabled_at: string | null
  consecutive_failures: number
  created_at: string
  updated_at: string
}

/** A webhook as it is created: enabled, with no failures and no previous secret. */
export function newWebhook(
  fields: Pick<Webhook, 'webhook_id' | 'workspace_id' | 'url' | 'event_types' | 'secret'>,
  at: string,
): Webhook {
  return {
    ...fields,
    previous_secret: null,
    previous_secret_expires_at: null,
    enabled: true,
    disabled_reason: null,
    disabled_at: null,
    consecutive_failures: 0,
    created_at: at,
    updated_at: at,
  }
}

/** How long a rotated-out secret keeps signing (docs/webhooks.md#secret-rotation). */
export const SECRET_OVERLAP_MS = 24 * 60 * 60 * 1000

export const ALL_EVENT_TYPES = '*'

export function matchesEventType(patterns: readonly string[], eventType: string): boolean {
  for (const pattern of patterns) {
    if (pattern === ALL_EVENT_TYPES || pattern === eventType) return true
    if (pattern.endsWith('.*') && eventType.startsWith(pattern.slice(0, -1))) return true
  }
  return false
}

/** `*`, a known event type, or a prefix of known types such as `lock.*`: a typo must not silently match nothing. */
export function isEventTypePattern(pattern: string): boolean {
  if (pattern === ALL_EVENT_TYPES) return true
  if (pattern.endsWith('.*')) return EVENT_TYPES.some((type) => type.startsWith(pattern.slice(0, -1)))
  return (EVENT_TYPES as readonly string[]).includes(pattern)
}

/** The secrets that sign a delivery made at `nowMs`: the current one, then the previous one during the overlap. */
export function signingSecrets(
  webhook: Pick<Webhook, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>,
  nowMs: number,
): string[] {
  const { previous_secret: previous, previous_secret_expires_at: expires } = webhook
  if (previous === null || expires === null || nowMs >= Date.parse(expires)) return [webhook.secret]
  return [webhook.secret, previous]
}

/** A `%` not followed by two hex digits. */
const BAD_PERCENT = /%(?![0-9a-f]{2})/i

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text)
    return true
  } catch {
    return false
  }
}

/** `raw` as an absolute http or https URL, or why it is not one. */
export function httpUrl(raw: string): URL | string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'not a valid URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `only http and https URLs are allowed, not ${url.protocol.slice(0, -1)}`
  return url
}

/**
 * Why a request cannot be sent to `raw` at all, or undefined when it can: it must parse as an absolute http or https
 * URL whose user name and password (sent as Basic auth) decode to UTF-8. Checked before each send.
 */
export function unsendableUrl(raw: string): string | undefined {
  const url = httpUrl(raw)
  if (typeof url === 'string') return url
  if (!decodes(url.username) || !decodes(url.password))
    return 'invalid percent-encoding in the user name or password (not UTF-8)'
  return undefined
}

/**
 * Why `raw` may not become a webhook's URL, or undefined when it may (the SSRF guard then checks where it points):
 * it must be sendable, and its percent-encoding well-formed throughout. Checked at create and update.
 */
export function webhookUrlProblem(raw: string): string | undefined {
  return (
    unsendableUrl(raw) ??
    (BAD_PERCENT.test(raw) ? 'invalid percent-encoding (a % must be followed by two hex digits)' : undefined)
  )
}
