import type { FastifyInstance } from 'fastify'
import type { AttemptService } from '../../app/attempts.js'
import type { DeviceService } from '../../app/devices.js'
import type { EventService } from '../../app/events.js'
import type { WebhookService } from '../../app/webhooks.js'
import type { WorkspaceService } from '../../app/workspaces.js'
import { LatchkeyError } from '../../domain/errors.js'
import type { AuthGate } from '../auth-gate.js'
import { sendConnectError } from './errors.js'
import type { Access } from './route.js'
import { registerAttemptRoutes } from './routes/attempts.js'
import { registerDeviceRoutes } from './routes/devices.js'
import { registerEventRoutes } from './routes/events.js'
import { registerWebhookRoutes } from './routes/webhooks.js'
import { registerWorkspaceRoutes } from './routes/workspaces.js'

export interface ConnectApiDeps {
  workspaces: WorkspaceService
  devices: DeviceService
  attempts: AttemptService
  events: EventService
  webhooks: WebhookService
}

/** The Seam-dialect Connect API, mounted at `/` (docs/api.md). */
export async function connectApi(app: FastifyInstance, deps: ConnectApiDeps, gate: AuthGate): Promise<void> {
  app.setErrorHandler((error, request, reply) => sendConnectError(error, request, reply))

  // Authentication precedes validation: a request without a valid key learns nothing about its body.
  app.addHook('onRequest', async (request) => {
    const caller = await gate(request, (token) => deps.workspaces.authenticate(token))
    const access = (request.routeOptions.config as { access?: Access }).access
    if (access === 'admin' && caller.kind !== 'admin') throw new LatchkeyError('unauthorized')
    // The admin names the workspace it acts on; a name that is no workspace answers as a missing one.
    const named = request.headers['seam-workspace']
    if (caller.kind === 'admin' && typeof named === 'string') await deps.workspaces.get(named)
    request.caller = caller
  })

  registerWorkspaceRoutes(app, deps.workspaces)
  registerDeviceRoutes(app, deps.devices)
  registerAttemptRoutes(app, deps.attempts)
  registerEventRoutes(app, deps.events)
  registerWebhookRoutes(app, deps.webhooks)
}
