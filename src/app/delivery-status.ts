import { decodeLogCursor, encodeLogCursor } from '../domain/cursor.js'
import {
  attemptPosition,
  scheduledPosition,
  type DeliveryLogEntry,
  type ScheduledAttempt,
} from '../domain/delivery-log.js'
import type { DeliveryAttempt } from '../domain/delivery.js'
import { LatchkeyError } from '../domain/errors.js'
import type { DeliveryLogStore, WorkspaceStore } from './store.js'

/**
 * Webhook deliveries as the v1 dialect sees them (docs/deliveries.md): a row per attempt made, plus a `pending` row for the
 * next automatic attempt of a delivery while one is scheduled. A row's status is fixed when its attempt is recorded:
 * `retrying` if another automatic attempt was scheduled after it, `failed` if none was (docs/deliveries.md).
 */

export const DELIVERY_STATUSES = ['delivered', 'failed', 'retrying', 'pending'] as const
export type DeliveryStatusName = (typeof DELIVERY_STATUSES)[number]

export interface DeliveryView {
  id: string
  event_id: string
  destination_id: string
  status: DeliveryStatusName
  response_code: number | null
  attempt_number: number
  attempted_at: string | null
  error_message: string | null
  evidence_id: string | null
}

/** Who is asking: the admin key, or one workspace's API key. */
export type KeyScope = { kind: 'admin' } | { kind: 'workspace'; workspaceId: string }

export interface DeliveryListInput {
  status?: string | undefined
  destinationId?: string | undefined
  eventId?: string | undefined
  limit: number
  cursor?: string | undefined
}

/** A pending row names the delivery and the attempt number it waits for; it is gone once that attempt is made. */
const PENDING_ID = /^dlv_pending_(\d{1,15})_(\d{1,9})$/

function pendingId(scheduled: ScheduledAttempt): string {
  return `dlv_pending_${scheduled.delivery_seq}_${scheduled.attempt_number}`
}

export function parseDeliveryStatus(value: string | undefined): DeliveryStatusName | undefined {
  if (value === undefined) return undefined
  if ((DELIVERY_STATUSES as readonly string[]).includes(value)) return value as DeliveryStatusName
  throw new LatchkeyError('invalid_input', `status: '${value}' is not a valid status value`)
}

function attemptView(attempt: DeliveryAttempt): DeliveryView {
  return {
    id: attempt.attempt_id,
    event_id: attempt.event_id,
    destination_id: attempt.webhook_id,
    status: attempt.status === 'success' ? 'delivered' : attempt.will_retry ? 'retrying' : 'failed',
    response_code: attempt.response_code,
    attempt_number: attempt.attempt_number,
    attempted_at: attempt.attempted_at,
    error_message: attempt.error_message,
    evidence_id: attempt.evidence_id,
  }
}

function scheduledView(scheduled: ScheduledAttempt): DeliveryView {
  return {
    id: pendingId(scheduled),
    event_id: scheduled.event_id,
    destination_id: scheduled.webhook_id,
    status: 'pending',
    response_code: null,
    attempt_number: scheduled.attempt_number,
    attempted_at: null,
    error_message: null,
    evidence_id: null,
  }
}

function entryView(entry: DeliveryLogEntry): DeliveryView {
  return entry.kind === 'attempt' ? attemptView(entry.attempt) : scheduledView(entry.scheduled)
}

function entryPosition(entry: DeliveryLogEntry) {
  return entry.kind === 'attempt' ? attemptPosition(entry.attempt) : scheduledPosition(entry.scheduled)
}

export function createDeliveryStatus(deps: {
  log: DeliveryLogStore
  store: { workspaces: Pick<WorkspaceStore, 'get'> }
}) {
  const { log } = deps

  /** Another workspace's tenant answers exactly as a missing one (docs/deliveries.md). */
  async function assertTenant(scope: KeyScope, tenantId: string): Promise<void> {
    const visible =
      scope.kind === 'workspace'
        ? scope.workspaceId === tenantId
        : (await deps.store.workspaces.get(tenantId)) !== undefined
    if (!visible) throw new LatchkeyError('workspace_not_found', `Tenant ${tenantId} not found.`)
  }

  async function findScheduled(tenantId: string, id: string): Promise<DeliveryView | undefined> {
    const match = PENDING_ID.exec(id)
    if (!match) return undefined
    const scheduled = await log.getScheduled(Number(match[1]))
    const same = scheduled && scheduled.workspace_id === tenantId && scheduled.attempt_number === Number(match[2])
    return same ? scheduledView(scheduled) : undefined
  }

  return {
    /** Newest first; pending rows sort by the time their attempt is due. */
    async list(
      scope: KeyScope,
      tenantId: string,
      input: DeliveryListInput,
    ): Promise<{ data: DeliveryView[]; next_cursor: string | null }> {
      const status = parseDeliveryStatus(input.status)
      await assertTenant(scope, tenantId)
      const entries = await log.listDeliveries({
        tenantId,
        limit: input.limit + 1,
        ...(status !== undefined ? { status } : {}),
        ...(input.destinationId !== undefined ? { destinationId: input.destinationId } : {}),
        ...(input.eventId !== undefined ? { eventId: input.eventId } : {}),
        ...(input.cursor !== undefined ? { after: decodeLogCursor(input.cursor) } : {}),
      })
      const items = entries.slice(0, input.limit)
      const last = items[items.length - 1]
      return {
        data: items.map(entryView),
        next_cursor: entries.length > input.limit && last ? encodeLogCursor(entryPosition(last)) : null,
      }
    },

    async get(scope: KeyScope, tenantId: string, id: string): Promise<DeliveryView> {
      await assertTenant(scope, tenantId)
      const attempt = PENDING_ID.test(id) ? undefined : await log.getAttempt(id)
      const view =
        attempt && attempt.workspace_id === tenantId ? attemptView(attempt) : await findScheduled(tenantId, id)
      if (!view) throw new LatchkeyError('delivery_not_found', `Delivery ${id} not found.`)
      return view
    },
  }
}

export type DeliveryStatusService = ReturnType<typeof createDeliveryStatus>
