import type { DeliveryStatus } from './webhook-delivery.js'
import type { Webhook } from './webhook.js'

/** A delivery (one event × one webhook) as the dispatcher tracks it. */
export interface DeliveryRef {
  seq: number
  webhook_id: string
  status: DeliveryStatus
  held: boolean
  /** When the next automatic attempt is due; null when none is scheduled (delivered, failed, held). */
  next_attempt_at: string | null
}

/** What one HTTP attempt needs, read when it is made. */
export interface DeliveryPlan extends DeliveryRef {
  event_id: string
  /** The event JSON exactly as stored: the request body. */
  body: string
  webhook: Pick<Webhook, 'url' | 'secret' | 'previous_secret' | 'previous_secret_expires_at' | 'enabled'>
}

/** One HTTP attempt as made; the store numbers it and chains its evidence. */
export interface AttemptInput {
  delivery_seq: number
  attempted_at: string
  duration_ms: number
  response_code: number | null
  response_headers: Record<string, string | string[]> | null
  /** The first 64 KiB of the response body. */
  response_body: string | null
  /** Network error, timeout or SSRF refusal. */
  error_message: string | null
  /** The `webhook-signature` header value of the request. */
  signature: string
  manual: boolean
}

/** One recorded HTTP attempt of a delivery. */
export interface DeliveryAttempt extends AttemptInput {
  seq: number
  attempt_id: string
  event_id: string
  webhook_id: string
  workspace_id: string
  event_type: string
  attempt_number: number
  status: 'success' | 'failed'
  will_retry: boolean
  /** SHA-256 chain per delivery: hex(sha256(`${previous ?? ''}\n${attempt_id}\n${signature}\n${code ?? ''}\n${attempted_at}`)). */
  evidence_id: string
}

/** A delivery as it stands. */
export interface DeliveryRecord {
  seq: number
  event_id: string
  webhook_id: string
  workspace_id: string
  event_type: string
  status: DeliveryStatus
  held: boolean
  attempt_count: number
  next_attempt_at: string | null
  last_attempt_at: string | null
  created_at: string
  updated_at: string
}
