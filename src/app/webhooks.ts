import { iso, type Clock } from '../domain/clock.js'
import { LatchkeyError, notFound } from '../domain/errors.js'
import { ALL_EVENT_TYPES, newWebhook, SECRET_OVERLAP_MS, webhookUrlProblem, type Webhook } from '../domain/webhook.js'
import type { Bus } from './bus.js'
import { newWebhookSecret } from './credentials.js'
import type { WebhookPatch, WebhookStore } from './store.js'

/** Refuses URLs a webhook may not point at (docs/webhooks.md#ssrf-guard); the reason is shown to the caller. */
export interface WebhookUrlGuard {
  refusal(url: string): Promise<string | undefined>
}

export interface WebhookServiceDeps {
  store: { webhooks: WebhookStore }
  bus: Bus
  guard: WebhookUrlGuard
  clock: Clock
  newId: () => string
}

export interface NewWebhook {
  url: string
  event_types?: string[] | undefined
}

/** A workspace's webhooks: create, change, rotate the secret, enable again (releasing what was held), delete. */
export function createWebhookService(deps: WebhookServiceDeps) {
  const { store } = deps
  const now = () => iso(deps.clock.now())

  /** A URL must be well-formed before the guard checks where it points: what is stored is then always sendable. */
  async function checkUrl(url: string): Promise<void> {
    const refusal = webhookUrlProblem(url) ?? (await deps.guard.refusal(url))
    if (refusal === undefined) return
    const message = `url: ${refusal}`
    throw new LatchkeyError('invalid_input', message, { validation_errors: { url: { _errors: [refusal] } } })
  }

  function found<T>(value: T | undefined): T {
    if (value === undefined) throw notFound('webhook_not_found', 'Webhook')
    return value
  }

  return {
    async create(workspaceId: string, input: NewWebhook): Promise<Webhook> {
      await checkUrl(input.url)
      const webhook = newWebhook(
        {
          webhook_id: deps.newId(),
          workspace_id: workspaceId,
          url: input.url,
          event_types: input.event_types ?? [ALL_EVENT_TYPES],
          secret: newWebhookSecret(),
        },
        now(),
      )
      await store.webhooks.create(webhook)
      return webhook
    },

    get: async (workspaceId: string, webhookId: string) => found(await store.webhooks.get(workspaceId, webhookId)),

    list: (workspaceId: string) => store.webhooks.list(workspaceId),

    /** Enabling a disabled webhook releases its held deliveries, oldest event first (docs/webhooks.md). */
    async update(workspaceId: string, webhookId: string, patch: WebhookPatch): Promise<Webhook> {
      if (patch.url !== undefined) await checkUrl(patch.url)
      const change = found(await store.webhooks.update(workspaceId, webhookId, patch, now()))
      if (change.released) deps.bus.emit('deliveriesReleased', webhookId)
      if (change.held) deps.bus.emit('deliveriesHeld', webhookId)
      return change.webhook
    },

    async delete(workspaceId: string, webhookId: string): Promise<void> {
      if (!(await store.webhooks.delete(workspaceId, webhookId, now()))) throw notFound('webhook_not_found', 'Webhook')
      deps.bus.emit('deliveriesHeld', webhookId)
    },

    /** A new secret; the old one keeps signing alongside for 24 h, so receivers can switch without a gap. */
    async rotateSecret(workspaceId: string, webhookId: string): Promise<Webhook> {
      const nowMs = deps.clock.now()
      return found(
        await store.webhooks.rotateSecret(
          workspaceId,
          webhookId,
          newWebhookSecret(),
          iso(nowMs + SECRET_OVERLAP_MS),
          iso(nowMs),
        ),
      )
    },
  }
}

export type WebhookService = ReturnType<typeof createWebhookService>
