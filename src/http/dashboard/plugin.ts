import type { FastifyInstance, FastifyRequest } from 'fastify'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { z } from 'zod'
import type { AttemptService } from '../../app/attempts.js'
import type { Bus } from '../../app/bus.js'
import type { DeliveryLog } from '../../app/delivery-log.js'
import type { DeviceService } from '../../app/devices.js'
import type { DeliveryAttempt } from '../../domain/delivery.js'
import type { WebhookService } from '../../app/webhooks.js'
import { workspaceOf, type WorkspaceService } from '../../app/workspaces.js'
import { PACKAGE_ROOT } from '../../compose/package-root.js'
import { toPublicAttempt } from '../../domain/attempt.js'
import { LatchkeyError } from '../../domain/errors.js'
import { bearerToken } from '../bearer.js'
import { DashboardHub, TooManyStreams, type View } from './hub.js'

export interface DashboardDeps {
  workspaces: WorkspaceService
  devices: DeviceService
  attempts: AttemptService
  webhooks: WebhookService
  deliveryLog: DeliveryLog
  bus: Bus
  logger: Logger
}

const DEVICE_LIMIT = 200
const ATTEMPT_LIMIT = 20
/** Recent deliveries shown per webhook, newest first (one row per event, its latest attempt). */
const DELIVERY_LIMIT = 6

/** The page's files are served as written, from the sources, whether latchkey runs from them or from the build. */
const asset = (name: string) => readFileSync(join(PACKAGE_ROOT, 'src/http/dashboard/static', name), 'utf8')

/** Security headers of the page: nothing but its own script and style, no framing, no referrer. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
}

/**
 * The live dashboard (docs/dashboard.md): a static page at /dashboard, an event stream of its workspace's devices,
 * attempts and webhooks at /dashboard/stream, and the manual retry it offers at /dashboard/retry. Actions other than
 * retry go through the Connect API. Keys travel only in the Authorization header, never in a URL.
 */
export async function dashboard(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const assets = {
    html: asset('index.html'),
    js: asset('app.js'),
    css: asset('app.css'),
  }

  async function snapshot(workspaceId: string, view: View): Promise<unknown> {
    switch (view) {
      case 'devices': {
        const page = await deps.devices.list(workspaceId, { limit: DEVICE_LIMIT })
        return page.items.map((d) => ({
          device_id: d.device_id,
          name: d.nickname ?? d.display_name,
          online: d.props.online,
          locked: d.props.locked,
          door_open: d.props.door_open,
          jammed: d.props.jammed,
          battery_level: d.props.battery_level,
          last_seen_at: d.props.last_seen_at,
          can_remotely_lock: d.can_remotely_lock,
          can_remotely_unlock: d.can_remotely_unlock,
        }))
      }
      case 'attempts': {
        const page = await deps.attempts.list(workspaceId, { limit: ATTEMPT_LIMIT })
        return page.items.map(toPublicAttempt)
      }
      case 'webhooks': {
        const scope = { kind: 'tenant', tenantId: workspaceId } as const
        const hooks = await deps.webhooks.list(workspaceId)
        return Promise.all(
          hooks.map(async (hook) => {
            const page = await deps.deliveryLog.listAttempts(scope, {
              destinationIds: [hook.webhook_id],
              dir: 'desc',
              limit: DELIVERY_LIMIT * 4,
            })
            return {
              // The signing secret is not shown here.
              webhook_id: hook.webhook_id,
              url: hook.url,
              event_types: hook.event_types,
              enabled: hook.enabled,
              disabled_reason: hook.disabled_reason,
              deliveries: latestPerEvent(page.items).slice(0, DELIVERY_LIMIT),
            }
          }),
        )
      }
    }
  }

  const hub = new DashboardHub({
    bus: deps.bus,
    snapshot,
    onError: (error, context) => deps.logger.error({ err: error, context }, 'dashboard stream failed'),
  })
  // Before the server stops accepting: open streams would otherwise hold it open.
  app.addHook('preClose', async () => hub.close())

  /** The workspace a dashboard call acts on: a workspace key's own, or the admin's `seam-workspace`. */
  async function workspaceFor(request: FastifyRequest): Promise<{ workspaceId: string; token: string }> {
    const token = bearerToken(request.headers.authorization)
    const caller = token ? await deps.workspaces.authenticate(token) : undefined
    if (!token || !caller) throw new LatchkeyError('unauthorized', 'Unauthorized: a valid API key is required')
    const named = request.headers['seam-workspace']
    const workspaceId = workspaceOf(caller, typeof named === 'string' ? named : undefined)
    if (caller.kind === 'admin') await deps.workspaces.get(workspaceId)
    return { workspaceId, token }
  }

  const hide = { schema: { hide: true } }
  app.get('/dashboard', hide, async (_request, reply) =>
    reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(assets.html),
  )
  app.get('/dashboard/app.js', hide, async (_request, reply) =>
    reply.headers(PAGE_HEADERS).type('text/javascript; charset=utf-8').send(assets.js),
  )
  app.get('/dashboard/app.css', hide, async (_request, reply) =>
    reply.headers(PAGE_HEADERS).type('text/css; charset=utf-8').send(assets.css),
  )

  app.get('/dashboard/stream', hide, async (request, reply) => {
    const { workspaceId, token } = await workspaceFor(request)
    try {
      reply.hijack()
      // A key deleted while its stream is open stops the stream at the next resync.
      hub.open(workspaceId, reply.raw, async () => (await deps.workspaces.authenticate(token)) !== undefined)
    } catch (error) {
      if (!(error instanceof TooManyStreams)) throw error
      reply.raw.writeHead(429, { 'content-type': 'application/json' })
      reply.raw.end(JSON.stringify({ error: { type: 'rate_limited', message: 'Too many open dashboards' }, ok: false }))
    }
  })

  const RetryInput = z.object({ event_id: z.string().min(1), webhook_id: z.string().min(1) })
  app.post('/dashboard/retry', hide, async (request) => {
    const { workspaceId } = await workspaceFor(request)
    const parsed = RetryInput.safeParse(request.body)
    if (!parsed.success) throw new LatchkeyError('invalid_input', 'event_id and webhook_id are required')
    await deps.deliveryLog.retry(
      { kind: 'tenant', tenantId: workspaceId },
      parsed.data.event_id,
      parsed.data.webhook_id,
    )
    return { ok: true }
  })
}

/** The newest attempt of each event, newest first: one row per delivery. */
function latestPerEvent(attempts: DeliveryAttempt[]) {
  const seen = new Set<string>()
  const rows = []
  for (const a of attempts) {
    if (seen.has(a.event_id)) continue
    seen.add(a.event_id)
    rows.push({
      event_id: a.event_id,
      event_type: a.event_type,
      attempt_id: a.attempt_id,
      attempt_number: a.attempt_number,
      status: a.status === 'success' ? 'delivered' : a.will_retry ? 'retrying' : 'failed',
      response_code: a.response_code,
      error_message: a.error_message,
      attempted_at: a.attempted_at,
      manual: a.manual,
    })
  }
  return rows
}
