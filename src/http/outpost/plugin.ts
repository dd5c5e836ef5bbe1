import type { FastifyInstance } from 'fastify'
import type { DeliveryLog, TenantScope } from '../../app/delivery-log.js'
import { looksLikeJwt, type TenantTokens } from '../../app/tenant-tokens.js'
import type { WorkspaceService } from '../../app/workspaces.js'
import { LatchkeyError } from '../../domain/errors.js'
import type { AuthGate } from '../auth-gate.js'
import { pathOf } from '../surface.js'
import { sendOutpostError } from './errors.js'
import { firstOfRepeated } from '../query.js'
import { REPEATABLE } from './query.js'
import { registerOutpostRoutes, type Access } from './routes.js'

export interface OutpostApiDeps {
  deliveryLog: DeliveryLog
  workspaces: WorkspaceService
  tokens: TenantTokens
}

declare module 'fastify' {
  interface FastifyRequest {
    tenantScope?: TenantScope
  }
}

/**
 * The Outpost-dialect delivery API, mounted at `/api/v1` (docs/deliveries.md). The admin key sees every tenant; a tenant JWT
 * only its own; anything else, workspace API keys included, is 401.
 */
export async function outpostApi(app: FastifyInstance, deps: OutpostApiDeps, gate: AuthGate): Promise<void> {
  app.setErrorHandler((error, request, reply) => sendOutpostError(error, request, reply))
  app.setNotFoundHandler((request, reply) =>
    sendOutpostError(
      new LatchkeyError('not_found', `route ${request.method} ${pathOf(request)} not found`),
      request,
      reply,
    ),
  )

  async function scopeOf(token: string): Promise<TenantScope | undefined> {
    // A token shaped like a JWT is verified as one and never looked up as a key (docs/deliveries.md).
    if (looksLikeJwt(token)) {
      const tenantId = await deps.tokens.verify(token)
      return tenantId === undefined ? undefined : { kind: 'tenant', tenantId }
    }
    const caller = await deps.workspaces.authenticate(token)
    return caller?.kind === 'admin' ? { kind: 'admin' } : undefined
  }

  // Authentication precedes validation: a request without a valid token learns nothing about its parameters.
  app.addHook('onRequest', async (request) => {
    const scope = await gate(request, scopeOf)
    const access = (request.routeOptions.config as { access?: Access }).access
    if (access === 'admin' && scope.kind !== 'admin') throw new LatchkeyError('unauthorized')
    request.tenantScope = scope
  })

  app.addHook('preValidation', firstOfRepeated(REPEATABLE))
  registerOutpostRoutes(app, deps.deliveryLog)
}
