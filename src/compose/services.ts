import { createAttemptService, type AttemptService, type CommandSender } from '../app/attempts.js'
import { bootstrap, resolveAdminKey, resolveJwtSecret, type BootstrapCredentials } from '../app/bootstrap.js'
import { createDeliveryLog, type DeliveryLog, type ManualAttempts } from '../app/delivery-log.js'
import { createDeliveryStatus, type DeliveryStatusService } from '../app/delivery-status.js'
import { createDeviceMessageHandler, type DeviceMessageHandler } from '../app/device-messages.js'
import { createDeviceService, type DeviceProvisioner, type DeviceService, type DeviceSessions } from '../app/devices.js'
import { createEventService, type EventService } from '../app/events.js'
import { newId } from '../app/ids.js'
import type { Store } from '../app/store.js'
import { createTenantTokens, type TenantTokens } from '../app/tenant-tokens.js'
import { createWebhookService, type WebhookService } from '../app/webhooks.js'
import { createWorkspaceService, type WorkspaceService } from '../app/workspaces.js'
import type { Config } from '../config.js'
import { createUrlGuard, type Resolve, type UrlGuard } from '../webhooks/ssrf.js'
import type { Runtime } from './runtime.js'

/** How often a waiting request reads its attempt back on a shared database (at most 1 s, docs/scale-out.md). */
export const SETTLE_POLL_MS = 250
/** How often each instance on a shared database settles the attempts whose deadline passed (docs/scale-out.md). */
export const DEADLINE_SWEEP_MS = 1000

export interface Services {
  workspaces: WorkspaceService
  devices: DeviceService
  attempts: AttemptService
  events: EventService
  webhooks: WebhookService
  handleDeviceMessage: DeviceMessageHandler
  /** The SSRF guard, shared by webhook registration and delivery. */
  guard: UrlGuard
  /** Present on the first start of an empty database, and until a start has shown them (src/app/bootstrap.ts). */
  bootstrap: BootstrapCredentials | undefined
  /** An admin key generated on this start (when ADMIN_API_KEY is unset and none existed). */
  generatedAdminKey: string | undefined
}

export interface ServiceDeps {
  store: Store
  /** Where commands go: the transport, built before the services and started after them. */
  commands: CommandSender
  sessions: DeviceSessions
  mqttPublicUrl: string
  /** DNS resolution seen by the SSRF guard (default node:dns lookup). */
  resolve: Resolve | undefined
  /** The external broker's device provisioning (MQTT_DEVICE_AUTH=dynsec). */
  provisioner?: DeviceProvisioner | undefined
  /** Device messages commit at the end of their task (default), or with the loop turn's group (in-process). */
  urgentDeviceWrites?: boolean
}

/** Step 3: the admin key, the first-start workspace, and the services that drive the core. */
export async function createServices(
  config: Pick<
    Config,
    | 'ADMIN_API_KEY'
    | 'DATA_DIR'
    | 'ACTION_TIMEOUT_MS'
    | 'LOCK_RESPONSE_WAIT_MS'
    | 'WEBHOOK_ALLOWED_CIDRS'
    | 'DATABASE_URL'
  >,
  rt: Pick<Runtime, 'clock' | 'now' | 'bus' | 'metrics' | 'onError'>,
  deps: ServiceDeps,
): Promise<Services> {
  const { store } = deps
  const { clock, now, bus, metrics } = rt
  const admin = await resolveAdminKey(store, config.ADMIN_API_KEY)
  const workspaces = createWorkspaceService({ store, newId, now, adminKeyHash: admin.hash })
  const credentials = await bootstrap(store, workspaces, config.DATA_DIR, admin.generated)

  const attempts = createAttemptService({
    store,
    bus,
    clock,
    metrics,
    newId,
    commands: deps.commands,
    actionTimeoutMs: config.ACTION_TIMEOUT_MS,
    lockResponseWaitMs: config.LOCK_RESPONSE_WAIT_MS,
    onError: rt.onError,
    // PostgreSQL may be shared by several instances, any of which may settle the attempt a request waits for.
    settlePollMs: config.DATABASE_URL ? SETTLE_POLL_MS : undefined,
    // ... and any of them may die with attempts pending: each sweeps every deadline, whoever's it is.
    deadlineSweepMs: config.DATABASE_URL ? DEADLINE_SWEEP_MS : undefined,
  })
  // Settled by another instance: answer the requests that wait for it here at once, not at the next poll.
  store.onAttemptSettled?.((attemptId) => {
    attempts.wake(attemptId).catch((error: unknown) => rt.onError(error, 'wake attempt'))
  })
  const guard = createUrlGuard({
    allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  })
  const mqttPublicUrl = deps.mqttPublicUrl
  return {
    workspaces,
    attempts,
    events: createEventService({ store, clock }),
    webhooks: createWebhookService({ store, bus, guard, clock, newId }),
    devices: createDeviceService({
      store,
      bus,
      sessions: deps.sessions,
      newId,
      now,
      mqttPublicUrl: () => mqttPublicUrl,
      provisioner: deps.provisioner,
      onError: rt.onError,
    }),
    handleDeviceMessage: createDeviceMessageHandler({
      store,
      attempts,
      clock,
      metrics,
      bus,
      urgent: deps.urgentDeviceWrites ?? true,
    }),
    guard,
    bootstrap: credentials,
    generatedAdminKey: admin.generated,
  }
}

export interface DeliveryApis {
  tokens: TenantTokens
  deliveryLog: DeliveryLog
  deliveryStatus: DeliveryStatusService
}

/**
 * The delivery APIs (docs/deliveries.md): one read model for both dialects, tenant tokens, and manual retries,
 * which go to the dispatcher.
 */
export async function createDeliveryApis(
  config: Pick<Config, 'JWT_SECRET'>,
  rt: Pick<Runtime, 'clock' | 'onError'>,
  store: Store,
  manual: ManualAttempts,
): Promise<DeliveryApis> {
  const tokens = createTenantTokens({ secret: await resolveJwtSecret(store, config.JWT_SECRET), clock: rt.clock })
  return {
    tokens,
    deliveryLog: createDeliveryLog({ log: store.deliveryLog, store, manual, tokens, onError: rt.onError }),
    deliveryStatus: createDeliveryStatus({ log: store.deliveryLog, store }),
  }
}
