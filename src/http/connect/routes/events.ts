import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { EventService } from '../../../app/events.js'
import { EVENT_TYPES } from '../../../domain/events.js'
import { Instant } from '../../instant.js'
import { presentPagination } from '../presenters.js'
import { connectRoute } from '../route.js'

const EventType = z.enum(EVENT_TYPES)

const ListInput = z.object({
  since: Instant.optional(),
  between: z.tuple([Instant, Instant]).optional(),
  device_id: z.string().min(1).optional(),
  device_ids: z.array(z.string().min(1)).max(1000).optional(),
  event_type: EventType.optional(),
  event_types: z.array(EventType).max(EVENT_TYPES.length).optional(),
  action_attempt_id: z.string().min(1).optional(),
  limit: z.number().int().min(1).max(1000).default(500),
  page_cursor: z.string().nullish(),
})

function both<T>(one: T | undefined, many: T[] | undefined): T[] | undefined {
  const all = [...(one === undefined ? [] : [one]), ...(many ?? [])]
  return all.length > 0 ? all : undefined
}

/** The event log (docs/api.md#events): newest first, the last 24 h unless `since` or `between` says otherwise. */
export function registerEventRoutes(app: FastifyInstance, events: EventService): void {
  connectRoute(app, {
    path: '/events/list',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'List events, newest first: the last 24 h by default, filtered by time, device, type or action attempt.',
    input: ListInput,
    handler: async (input, { workspaceId, request }) => {
      const page = await events.list(workspaceId, {
        since: input.since,
        between: input.between,
        deviceIds: both(input.device_id, input.device_ids),
        eventTypes: both(input.event_type, input.event_types),
        actionAttemptId: input.action_attempt_id,
        limit: input.limit,
        cursor: input.page_cursor ?? undefined,
      })
      return { events: page.items, pagination: presentPagination(page, request, input) }
    },
  })

  connectRoute(app, {
    path: '/events/get',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'Get an event.',
    input: z.object({ event_id: z.string().min(1) }),
    handler: async (input, { workspaceId }) => ({ event: await events.get(workspaceId, input.event_id) }),
  })
}
