import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { AttemptEvent, AttemptListInput, DeliveryLog, TenantScope } from '../../app/delivery-log.js'
import type { DeliveryAttempt } from '../../domain/delivery.js'
import { LatchkeyError } from '../../domain/errors.js'
import { presentAttempt, presentPage } from './presenters.js'
import { Include, includes, listInput, ListQuery, PageQuery, pageInput, type Includes } from './query.js'

const TenantPath = z.object({ tenant_id: z.string().min(1) })
const DestinationPath = TenantPath.extend({ destination_id: z.string().min(1) })
const Tags = ['Delivery API (Outpost dialect)']

export type Access = 'admin' | 'tenant'

function scopeOf(request: FastifyRequest): TenantScope {
  if (!request.tenantScope) throw new LatchkeyError('unauthorized')
  return request.tenantScope
}

/** Attempts, single and listed, on every route that returns them (docs/deliveries.md). */
export function registerOutpostRoutes(app: FastifyInstance, log: DeliveryLog): void {
  const api = app.withTypeProvider<ZodTypeProvider>()

  async function eventsFor(attempts: DeliveryAttempt[], include: Includes): Promise<Map<string, AttemptEvent>> {
    return include.event ? log.events(attempts) : new Map()
  }

  async function sendPage(
    input: AttemptListInput,
    include: Includes,
    list: (input: AttemptListInput) => ReturnType<DeliveryLog['listAttempts']>,
  ) {
    const page = await list(input)
    return presentPage(page, include, await eventsFor(page.items, include), input.dir, input.limit)
  }

  async function sendOne(attempt: DeliveryAttempt, include: Includes) {
    return presentAttempt(attempt, include, await eventsFor([attempt], include))
  }

  api.get('/attempts', {
    schema: {
      tags: Tags,
      summary: 'List delivery attempts, newest first by default; the admin key sees every tenant.',
      querystring: ListQuery,
    },
    handler: async (request) =>
      sendPage(listInput(request.query), includes(request.query.include), (input) =>
        log.listAttempts(scopeOf(request), input),
      ),
  })

  api.get('/attempts/:attempt_id', {
    schema: {
      tags: Tags,
      summary: 'Get one delivery attempt.',
      params: z.object({ attempt_id: z.string().min(1) }),
      querystring: z.object({ tenant_id: z.string().min(1).optional(), ...Include }),
    },
    handler: async (request) => {
      const attempt = await log.getAttempt(scopeOf(request), request.params.attempt_id, request.query.tenant_id)
      return sendOne(attempt, includes(request.query.include))
    },
  })

  api.get('/tenants/:tenant_id/destinations/:destination_id/attempts', {
    schema: {
      tags: Tags,
      summary: "List one destination's delivery attempts.",
      params: DestinationPath,
      querystring: PageQuery,
    },
    handler: async (request) => {
      const { tenant_id, destination_id } = request.params
      const list = (input: AttemptListInput) =>
        log.listDestinationAttempts(scopeOf(request), tenant_id, destination_id, input)
      return sendPage(pageInput(request.query), includes(request.query.include), list)
    },
  })

  api.get('/tenants/:tenant_id/destinations/:destination_id/attempts/:attempt_id', {
    schema: {
      tags: Tags,
      summary: "Get one of a destination's delivery attempts.",
      params: DestinationPath.extend({ attempt_id: z.string().min(1) }),
      querystring: z.object(Include),
    },
    handler: async (request) => {
      const { tenant_id, destination_id, attempt_id } = request.params
      const attempt = await log.getDestinationAttempt(scopeOf(request), tenant_id, destination_id, attempt_id)
      return sendOne(attempt, includes(request.query.include))
    },
  })

  api.post('/retry', {
    schema: {
      tags: Tags,
      summary: 'Make one manual attempt of an event to a destination now; 202 once accepted.',
      body: z.object({ event_id: z.string().min(1), destination_id: z.string().min(1) }),
    },
    handler: async (request, reply) => {
      await log.retry(scopeOf(request), request.body.event_id, request.body.destination_id)
      return reply.status(202).send({ success: true })
    },
  })

  api.get('/tenants/:tenant_id/token', {
    schema: {
      tags: Tags,
      summary: 'Issue a tenant JWT (HS256, 24 h) that sees only its tenant (admin key only).',
      params: TenantPath,
    },
    config: { access: 'admin' satisfies Access },
    handler: async (request) => ({
      token: await log.token(request.params.tenant_id),
      tenant_id: request.params.tenant_id,
    }),
  })
}
