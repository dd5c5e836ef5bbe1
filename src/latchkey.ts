import type { FastifyInstance } from 'fastify'
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import { createBroker, type Broker, type Principal } from '../broker/index.js'
import { createAttemptService } from './app/attempts.js'
import { bootstrap, resolveAdminKey, resolveJwtSecret, type BootstrapCredentials } from './app/bootstrap.js'
import { createBus } from './app/bus.js'
import { newId } from './app/ids.js'
import { newServiceSecret, sameDigest, sha256 } from './app/credentials.js'
import { createDeviceMessageHandler } from './app/device-messages.js'
import { createDeviceService } from './app/devices.js'
import { createDeliveryLog } from './app/delivery-log.js'
import { createDeliveryStatus } from './app/delivery-status.js'
import { createEventService } from './app/events.js'
import { Metrics } from './app/metrics.js'
import type { Store } from './app/store.js'
import { systemClock } from './app/system-clock.js'
import { createTenantTokens } from './app/tenant-tokens.js'
import { createWebhookService } from './app/webhooks.js'
import { createWorkspaceService } from './app/workspaces.js'
import type { Config } from './config.js'
import { iso, type Clock } from './domain/clock.js'
import { createHttpServer } from './http/server.js'
import { connectOrchestrator, type OrchestratorClient } from './mqtt/orchestrator-client.js'
import { SqliteDeliveryLog } from './store/sqlite/delivery-log.js'
import { createSqliteStore, databasePath } from './store/sqlite/index.js'
import { createDispatcher } from './webhooks/dispatcher.js'
import { createHttpSender } from './webhooks/http-sender.js'
import { createUrlGuard, type Resolve } from './webhooks/ssrf.js'

export interface StartOptions {
  clock?: Clock
  logger?: Logger
  /** Jitter source of the webhook retry schedule (default Math.random). */
  random?: () => number
  /** DNS resolution seen by the webhook SSRF guard (default node:dns lookup), so tests can play a rebinding. */
  resolve?: Resolve
}

export interface Latchkey {
  httpUrl: string
  mqttUrl: string
  /** Present on the first start of an empty database only. */
  bootstrap: BootstrapCredentials | undefined
  /** An admin key generated on this start (when ADMIN_API_KEY is unset and none existed). */
  generatedAdminKey: string | undefined
  metrics: Metrics
  http: FastifyInstance
  log: Logger
  /** Read access for tests and benchmarks (e.g. the recorded webhook attempts). */
  store: Store
  close(): Promise<void>
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/**
 * The composition root: config → store → broker → orchestrator → webhook dispatcher → http, closed in reverse
 * (docs/design.md#start-up-and-shutdown).
 * Used by `npm start` and, in-process, by the tests.
 */
export async function startLatchkey(config: Config, options: StartOptions = {}): Promise<Latchkey> {
  const clock = options.clock ?? systemClock
  const log = options.logger ?? pino({ level: config.LOG_LEVEL })
  const now = () => iso(clock.now())
  const metrics = new Metrics()
  const bus = createBus()
  const closers: Array<() => Promise<void>> = []
  const close = async () => {
    // Each part closes even when an earlier one failed; failures are logged, not swallowed.
    for (const closer of closers.reverse())
      await closer().catch((error: unknown) => log.error({ err: error }, 'close failed'))
  }

  try {
    mkdirSync(config.DATA_DIR, { recursive: true })
    const store = createSqliteStore({
      filename: databasePath(config.DATA_DIR),
      newId,
      now,
      onEvents: (events) => bus.emit('eventsCommitted', events),
    })
    closers.push(() => store.close())
    await store.devices.markAllOffline()

    const admin = await resolveAdminKey(store, config.ADMIN_API_KEY)
    const workspaces = createWorkspaceService({ store, newId, now, adminKeyHash: admin.hash })
    const credentials = await bootstrap(store, workspaces, config.DATA_DIR, admin.generated)

    const servicePassword = config.MQTT_SERVICE_PASSWORD ?? newServiceSecret()
    const servicePasswordHash = sha256(servicePassword)
    // The one password check: the embedded broker's hook and the /mqtt-auth callbacks (MQTT_DEVICE_AUTH=http).
    const deviceAuth = async (username: string, password: Buffer): Promise<Principal | undefined> => {
      if (username === config.MQTT_SERVICE_USERNAME) {
        return sameDigest(sha256(password), servicePasswordHash) ? { kind: 'service' } : undefined
      }
      const stored = await store.devices.secretHash(username)
      return stored && sameDigest(sha256(password), stored) ? { kind: 'device', deviceId: username } : undefined
    }
    let broker: Broker | undefined
    if (config.EMBEDDED_BROKER) {
      broker = await createBroker({
        host: config.MQTT_HOST,
        port: config.MQTT_PORT,
        authenticate: deviceAuth,
        onRefused(reason, clientId, detail) {
          metrics.inc('mqtt_refusals_total', { reason })
          log.warn({ reason, clientId, detail }, 'mqtt refused')
        },
      })
      const embedded = broker
      closers.push(() => embedded.close())
    }
    const mqttUrl = config.MQTT_URL ?? `mqtt://127.0.0.1:${broker?.port ?? config.MQTT_PORT}`
    const mqttPublicUrl =
      config.MQTT_PUBLIC_URL ??
      (config.MQTT_URL ? mqttUrl : `mqtt://${hostForUrl(config.MQTT_HOST)}:${broker?.port ?? config.MQTT_PORT}`)

    const onError = (error: unknown, context: string) => log.error({ err: error, context }, 'background failure')
    // The attempt service sends through the MQTT client, which in turn feeds it device messages: late-bound.
    const link: { client?: OrchestratorClient } = {}
    const attempts = createAttemptService({
      store,
      bus,
      clock,
      metrics,
      newId,
      commands: {
        send: (deviceId, command) =>
          link.client ? link.client.send(deviceId, command) : Promise.reject(new Error('MQTT client not connected')),
      },
      actionTimeoutMs: config.ACTION_TIMEOUT_MS,
      lockResponseWaitMs: config.LOCK_RESPONSE_WAIT_MS,
      onError,
    })
    const guard = createUrlGuard({
      allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS,
      ...(options.resolve ? { resolve: options.resolve } : {}),
    })
    const webhooks = createWebhookService({ store, bus, guard, clock, newId })
    const events = createEventService({ store, clock })
    const dispatcher = createDispatcher({
      deliveries: store.deliveries,
      bus,
      clock,
      sender: createHttpSender({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, clock, guard }),
      metrics,
      policy: {
        scheduleSeconds: config.WEBHOOK_RETRY_SCHEDULE,
        disableAfter: config.WEBHOOK_DISABLE_AFTER,
        random: options.random ?? Math.random,
      },
      limits: { total: config.WEBHOOK_CONCURRENCY, perWebhook: config.WEBHOOK_CONCURRENCY_PER_WEBHOOK },
      onError,
      warn: (detail, message) => log.warn(detail, message),
    })
    const handleDeviceMessage = createDeviceMessageHandler({ store, attempts, clock, metrics })
    const devices = createDeviceService({
      store,
      bus,
      sessions: { disconnect: (deviceId) => broker?.disconnect(deviceId) },
      newId,
      now,
      mqttPublicUrl: () => mqttPublicUrl,
    })

    // Before the first device message: a device's `online` must find its recovered attempts waiting for it.
    await attempts.recover()
    const client = await connectOrchestrator({
      url: mqttUrl,
      username: config.MQTT_SERVICE_USERNAME,
      password: servicePassword,
      onMessage: handleDeviceMessage,
      onError,
    })
    link.client = client
    closers.push(() => client.close())
    // Deliveries committed before a crash go out again; closes before the store, after HTTP stops.
    await dispatcher.start()
    closers.push(() => dispatcher.close())

    // The delivery APIs (docs/deliveries.md): one read model for both dialects; manual retries go to the dispatcher.
    const tokens = createTenantTokens({ secret: await resolveJwtSecret(store, config.JWT_SECRET), clock })
    const deliveryReads = new SqliteDeliveryLog(store.db)
    const deliveryLog = createDeliveryLog({ log: deliveryReads, store, manual: dispatcher, tokens, onError })
    const deliveryStatus = createDeliveryStatus({ log: deliveryReads, store })

    const http = await createHttpServer({
      workspaces,
      devices,
      attempts,
      events,
      webhooks,
      deliveryLog,
      deliveryStatus,
      tokens,
      metrics,
      ready: () => client.connected && store.db.open,
      gauges: () => {
        const { queued, inFlight } = dispatcher.stats()
        return {
          mqtt_connected_clients: broker?.connectedClients() ?? 0,
          attempts_pending_timers: attempts.pendingTimers(),
          webhook_deliveries_queued: queued,
          webhook_deliveries_in_flight: inFlight,
        }
      },
      logger: log,
      version: '0.1.0',
      mqttAuth:
        config.MQTT_DEVICE_AUTH === 'http' && config.MQTT_AUTH_SECRET
          ? {
              secret: config.MQTT_AUTH_SECRET,
              serviceUsername: config.MQTT_SERVICE_USERNAME,
              authenticate: deviceAuth,
              deviceExists: async (deviceId) => (await store.devices.secretHash(deviceId)) !== undefined,
              metrics,
            }
          : undefined,
    })
    await http.listen({ host: config.HOST, port: config.PORT })
    closers.push(() => http.close())
    // Runs first on close: waiting requests answer with the attempt as it stands; pending attempts stay committed
    // and are recovered by the next start.
    closers.push(async () => attempts.close())
    const { port } = http.server.address() as AddressInfo

    return {
      httpUrl: `http://${hostForUrl(config.HOST)}:${port}`,
      mqttUrl: mqttPublicUrl,
      bootstrap: credentials,
      generatedAdminKey: admin.generated,
      metrics,
      http,
      log,
      store,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
