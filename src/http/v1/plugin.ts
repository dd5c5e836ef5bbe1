import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { DeliveryStatusService, KeyScope } from '../../app/delivery-status.js'
import { looksLikeJwt } from '../../app/tenant-tokens.js'
import type { WorkspaceService } from '../../app/workspaces.js'
import { LatchkeyError } from '../../domain/errors.js'
import type { AuthGate } from '../auth-gate.js'
import { firstOfRepeated } from '../query.js'
import { pathOf } from '../surface.js'
import { sendProblem } from './errors.js'

export interface V1ApiDeps {
  deliveryStatus: DeliveryStatusService
  workspaces: WorkspaceService
}

declare module 'fastify' {
  interface FastifyRequest {
    keyScope?: KeyScope
  }
}

export const DEFAULT_LIMIT = 20
export const MAX_LIMIT = 100
const Tags = ['Delivery API (v1 dialect)']
const TenantPath = z.object({ tenant_id: z.string().min(1) })

const ListQuery = z.object({
  status: z.string().optional().describe('delivered | failed | retrying | pending'),
  destination_id: z.string().min(1).optional(),
  event_id: z.string().min(1).optional(),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe(`default ${DEFAULT_LIMIT}; larger than ${MAX_LIMIT} is capped`),
  cursor: z.string().min(1).optional(),
  next_cursor: z.string().min(1).optional().describe('the same as cursor'),
})

function scopeOf(request: FastifyRequest): KeyScope {
  if (!request.keyScope) throw new LatchkeyError('unauthorized')
  return request.keyScope
}

/**
 * The v1-dialect delivery API, mounted at `/v1` (docs/deliveries.md): a tenant's own workspace API key, or the admin key.
 * Another tenant's path answers exactly as a missing tenant.
 */
export async function v1Api(app: FastifyInstance, deps: V1ApiDeps, gate: AuthGate): Promise<void> {
  app.setErrorHandler((error, request, reply) => sendProblem(error, request, reply))
  app.setNotFoundHandler((request, reply) =>
    sendProblem(new LatchkeyError('not_found', `No route ${request.method} ${pathOf(request)}.`), request, reply),
  )

  app.addHook('onRequest', async (request) => {
    // Tenant JWTs belong to the Outpost dialect; this one takes API keys only.
    const caller = await gate(request, async (token) =>
      looksLikeJwt(token) ? undefined : deps.workspaces.authenticate(token),
    )
    request.keyScope =
      caller.kind === 'admin' ? { kind: 'admin' } : { kind: 'workspace', workspaceId: caller.workspaceId }
  })

  app.addHook('preValidation', firstOfRepeated())
  const api = app.withTypeProvider<ZodTypeProvider>()
  api.get('/tenants/:tenant_id/deliveries', {
    schema: {
      tags: Tags,
      summary: "List a tenant's delivery attempts and scheduled attempts, newest first.",
      params: TenantPath,
      querystring: ListQuery,
    },
    handler: async (request) => {
      const { status, destination_id, event_id, limit, cursor, next_cursor } = request.query
      return deps.deliveryStatus.list(scopeOf(request), request.params.tenant_id, {
        status,
        destinationId: destination_id,
        eventId: event_id,
        limit: Math.min(limit ?? DEFAULT_LIMIT, MAX_LIMIT),
        cursor: cursor ?? next_cursor,
      })
    },
  })

  api.get('/tenants/:tenant_id/deliveries/:delivery_id', {
    schema: {
      tags: Tags,
      summary: 'Get one delivery attempt or scheduled attempt.',
      params: TenantPath.extend({ delivery_id: z.string().min(1) }),
    },
    handler: async (request) =>
      deps.deliveryStatus.get(scopeOf(request), request.params.tenant_id, request.params.delivery_id),
  })
}
