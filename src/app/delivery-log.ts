import { decodeLogCursor, encodeLogCursor } from '../domain/cursor.js'
import { attemptPosition, type AttemptLogQuery, type AttemptOutcome, type TimeRange } from '../domain/delivery-log.js'
import type { DeliveryAttempt } from '../domain/delivery.js'
import { LatchkeyError } from '../domain/errors.js'
import type { LatchkeyEvent } from '../domain/events.js'
import { matchesEventType } from '../domain/webhook.js'
import type { DeliveryLogStore, DeliveryStore, WebhookStore, WorkspaceStore } from './store.js'
import type { TenantTokens } from './tenant-tokens.js'

/**
 * Webhook delivery attempts as the Outpost dialect sees them (docs/deliveries.md): lists both ways, single attempts,
 * manual retries and tenant tokens. A tenant is a workspace, a destination a webhook, a topic an event type.
 */

/** Who is asking: the admin key (every tenant) or a tenant JWT (its own tenant only). */
export type TenantScope = { kind: 'admin' } | { kind: 'tenant'; tenantId: string }

/** Declared here, implemented by the webhook dispatcher. */
export interface ManualAttempts {
  /** Makes one manual attempt of a delivery now, outside its automatic schedule; resolves once it is recorded. */
  attemptManually(deliverySeq: number): Promise<void>
}

export interface DeliveryLogDeps {
  log: DeliveryLogStore
  store: {
    workspaces: Pick<WorkspaceStore, 'get'>
    webhooks: Pick<WebhookStore, 'get'>
    deliveries: Pick<DeliveryStore, 'get'>
  }
  manual: ManualAttempts
  tokens: TenantTokens
  onError: (error: unknown, context: string) => void
}

export interface AttemptListInput {
  tenantIds?: string[] | undefined
  eventIds?: string[] | undefined
  destinationIds?: string[] | undefined
  topics?: string[] | undefined
  status?: 'success' | 'failed' | undefined
  time?: TimeRange | undefined
  dir: 'asc' | 'desc'
  limit: number
  next?: string | undefined
  prev?: string | undefined
}

export interface AttemptPage {
  items: DeliveryAttempt[]
  next: string | null
  prev: string | null
}

/** The event of an attempt, for `include=event`; `eligible_for_retry` says whether POST /retry would be accepted now. */
export interface AttemptEvent {
  event: LatchkeyEvent
  eligible_for_retry: boolean
}

/** The key of an attempt's entry in the map `events()` returns: its event and destination. */
export function attemptEventKey(attempt: Pick<DeliveryAttempt, 'event_id' | 'webhook_id'>): string {
  return `${attempt.event_id}/${attempt.webhook_id}`
}

const OUTCOMES: Record<'success' | 'failed', AttemptOutcome[]> = {
  success: ['delivered'],
  failed: ['retrying', 'failed'],
}

const tenantNotFound = () => new LatchkeyError('workspace_not_found', 'tenant not found')
const attemptNotFound = () => new LatchkeyError('delivery_not_found', 'attempt not found')

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

export function createDeliveryLog(deps: DeliveryLogDeps) {
  const { log, store } = deps

  /** The tenants a query may see: a tenant token only its own, and naming another answers as a missing tenant. */
  function tenantsFor(scope: TenantScope, requested: string[] | undefined): string[] | undefined {
    if (scope.kind === 'admin') return requested
    if (requested?.some((id) => id !== scope.tenantId)) throw tenantNotFound()
    return [scope.tenantId]
  }

  async function assertTenant(scope: TenantScope, tenantId: string): Promise<void> {
    if (scope.kind === 'tenant' ? scope.tenantId !== tenantId : !(await store.workspaces.get(tenantId)))
      throw tenantNotFound()
  }

  async function assertDestination(scope: TenantScope, tenantId: string, destinationId: string): Promise<void> {
    await assertTenant(scope, tenantId)
    if (!(await store.webhooks.get(tenantId, destinationId)))
      throw new LatchkeyError('webhook_not_found', 'destination not found')
  }

  /** One page, forwards after `next` or backwards before `prev`, with the cursors of its neighbours (null at the ends). */
  async function listAttempts(scope: TenantScope, input: AttemptListInput): Promise<AttemptPage> {
    if (input.next !== undefined && input.prev !== undefined)
      throw new LatchkeyError('invalid_input', 'next and prev cannot be used together')
    const cursor = input.next ?? input.prev
    const after = cursor === undefined ? undefined : decodeLogCursor(cursor)
    const backwards = input.prev !== undefined
    const query: AttemptLogQuery = defined({
      tenantIds: tenantsFor(scope, input.tenantIds),
      eventIds: input.eventIds,
      destinationIds: input.destinationIds,
      topics: input.topics,
      outcomes: input.status && OUTCOMES[input.status],
      time: input.time,
      dir: backwards ? (input.dir === 'asc' ? 'desc' : 'asc') : input.dir,
      after,
      limit: input.limit + 1,
    })
    const rows = await log.listAttempts(query)
    const more = rows.length > input.limit
    const items = rows.slice(0, input.limit)
    if (backwards) items.reverse()
    const first = items[0]
    const last = items[items.length - 1]
    const encode = (attempt: DeliveryAttempt | undefined) =>
      attempt ? encodeLogCursor(attemptPosition(attempt)) : null
    return {
      items,
      next: backwards || more ? encode(last) : null,
      prev: backwards ? (more ? encode(first) : null) : after ? encode(first) : null,
    }
  }

  async function getAttempt(scope: TenantScope, attemptId: string, tenantId?: string): Promise<DeliveryAttempt> {
    const attempt = await log.getAttempt(attemptId)
    const tenants = tenantsFor(scope, tenantId === undefined ? undefined : [tenantId])
    if (!attempt || (tenants && !tenants.includes(attempt.workspace_id))) throw attemptNotFound()
    return attempt
  }

  return {
    listAttempts,
    getAttempt,

    async listDestinationAttempts(
      scope: TenantScope,
      tenantId: string,
      destinationId: string,
      input: AttemptListInput,
    ): Promise<AttemptPage> {
      await assertDestination(scope, tenantId, destinationId)
      return listAttempts(scope, { ...input, tenantIds: [tenantId], destinationIds: [destinationId] })
    },

    async getDestinationAttempt(
      scope: TenantScope,
      tenantId: string,
      destinationId: string,
      attemptId: string,
    ): Promise<DeliveryAttempt> {
      await assertDestination(scope, tenantId, destinationId)
      const attempt = await getAttempt(scope, attemptId, tenantId)
      if (attempt.webhook_id !== destinationId) throw attemptNotFound()
      return attempt
    },

    /** The events of these attempts, with whether each could be retried to its destination now. */
    async events(attempts: DeliveryAttempt[]): Promise<Map<string, AttemptEvent>> {
      const events = await log.events(attempts.map((a) => a.event_id))
      const destinations = await log.destinations(attempts.map((a) => a.webhook_id))
      const out = new Map<string, AttemptEvent>()
      for (const attempt of attempts) {
        const event = events.get(attempt.event_id)
        const destination = destinations.get(attempt.webhook_id)
        if (!event) continue
        const eligible =
          destination !== undefined &&
          destination.enabled &&
          matchesEventType(destination.event_types, attempt.event_type)
        out.set(attemptEventKey(attempt), { event, eligible_for_retry: eligible })
      }
      return out
    },

    /**
     * Accepts a manual attempt of an event to a destination (docs/deliveries.md): 404 unless the event was attempted
     * to that destination in the caller's tenant and the destination still exists; refused while it is disabled or
     * no longer subscribed to the event's type. The attempt is made in the background and numbered after the last.
     */
    async retry(scope: TenantScope, eventId: string, destinationId: string): Promise<void> {
      const delivery = await store.deliveries.get(eventId, destinationId)
      if (
        !delivery ||
        delivery.attempt_count === 0 ||
        (scope.kind === 'tenant' && delivery.workspace_id !== scope.tenantId)
      ) {
        throw new LatchkeyError('event_not_found', 'event not found')
      }
      const webhook = await store.webhooks.get(delivery.workspace_id, destinationId)
      if (!webhook) throw new LatchkeyError('webhook_not_found', 'destination not found')
      if (!webhook.enabled) throw new LatchkeyError('retry_not_allowed', 'destination is disabled')
      if (!matchesEventType(webhook.event_types, delivery.event_type)) {
        throw new LatchkeyError('retry_not_allowed', `destination is not subscribed to topic ${delivery.event_type}`)
      }
      deps.manual.attemptManually(delivery.seq).catch((error: unknown) => deps.onError(error, 'manual webhook attempt'))
    },

    /** A tenant token for an existing tenant (admin only, enforced by the caller's surface). */
    async token(tenantId: string): Promise<string> {
      if (!(await store.workspaces.get(tenantId))) throw tenantNotFound()
      return deps.tokens.issue(tenantId)
    },
  }
}

export type DeliveryLog = ReturnType<typeof createDeliveryLog>
