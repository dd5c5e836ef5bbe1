import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { WebhookService } from '../../../app/webhooks.js'
import { isEventTypePattern } from '../../../domain/webhook.js'
import { presentWebhook } from '../presenters.js'
import { connectRoute } from '../route.js'

const EventTypes = z
  .array(z.string().refine(isEventTypePattern, { message: 'not an event type (nor * nor a prefix such as lock.*)' }))
  .min(1)
  .max(50)
const Url = z.string().min(1).max(2048)
const WebhookId = z.object({ webhook_id: z.string().min(1) })

/** Webhooks on the routes the Seam SDK calls (docs/api.md, docs/webhooks.md). */
export function registerWebhookRoutes(app: FastifyInstance, webhooks: WebhookService): void {
  connectRoute(app, {
    path: '/webhooks/create',
    methods: ['POST'],
    access: 'workspace',
    summary:
      'Create a webhook for the events of this workspace (event_types defaults to ["*"]); the response carries its secret.',
    input: z.object({ url: Url, event_types: EventTypes.optional() }),
    handler: async (input, { workspaceId }) => ({ webhook: presentWebhook(await webhooks.create(workspaceId, input)) }),
  })

  connectRoute(app, {
    path: '/webhooks/get',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'Get a webhook.',
    input: WebhookId,
    handler: async (input, { workspaceId }) => ({
      webhook: presentWebhook(await webhooks.get(workspaceId, input.webhook_id)),
    }),
  })

  connectRoute(app, {
    path: '/webhooks/list',
    methods: ['GET', 'POST'],
    access: 'workspace',
    summary: 'List the webhooks of this workspace, oldest first.',
    input: z.object({}),
    handler: async (_input, { workspaceId }) => ({ webhooks: (await webhooks.list(workspaceId)).map(presentWebhook) }),
  })

  connectRoute(app, {
    path: '/webhooks/update',
    methods: ['PUT', 'POST'],
    access: 'workspace',
    summary:
      'Change the URL or event types, or enable/disable a webhook; enabling releases its held deliveries in event order.',
    input: WebhookId.extend({
      url: Url.optional(),
      event_types: EventTypes.optional(),
      enabled: z.boolean().optional(),
    }),
    handler: async ({ webhook_id, ...patch }, { workspaceId }) => {
      await webhooks.update(workspaceId, webhook_id, patch)
    },
  })

  connectRoute(app, {
    path: '/webhooks/delete',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Delete a webhook; its pending deliveries are cancelled.',
    input: WebhookId,
    handler: async (input, { workspaceId }) => {
      await webhooks.delete(workspaceId, input.webhook_id)
    },
  })

  connectRoute(app, {
    path: '/webhooks/rotate_secret',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Issue a new signing secret; the old one keeps signing alongside for 24 h.',
    input: WebhookId,
    handler: async (input, { workspaceId }) => ({
      webhook: presentWebhook(await webhooks.rotateSecret(workspaceId, input.webhook_id)),
    }),
  })
}
