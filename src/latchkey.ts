import type { FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import { createBroker, type Broker } from '../broker/index.js'
import { createAttemptService } from './app/attempts.js'
import { bootstrap, resolveAdminKey, type BootstrapCredentials } from './app/bootstrap.js'
import { createBus } from './app/bus.js'
import { newServiceSecret, sameDigest, sha256 } from './app/credentials.js'
import { createDeviceMessageHandler } from './app/device-messages.js'
import { createDeviceService } from './app/devices.js'
import { Metrics } from './app/metrics.js'
import { systemClock } from './app/system-clock.js'
import { createWorkspaceService } from './app/workspaces.js'
import type { Config } from './config.js'
import { iso, type Clock } from './domain/clock.js'
import { createHttpServer } from './http/server.js'
import { connectOrchestrator, type OrchestratorClient } from './mqtt/orchestrator-client.js'
import { createSqliteStore, databasePath } from './store/sqlite/index.js'

export interface StartOptions {
  clock?: Clock
  logger?: Logger
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
  close(): Promise<void>
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/**
 * The composition root: config → store → broker → orchestrator → http, closed in reverse (STYLE.md).
 * Used by `npm start` and, in-process, by the tests.
 */
export async function startLatchkey(config: Config, options: StartOptions = {}): Promise<Latchkey> {
  const clock = options.clock ?? systemClock
  const log = options.logger ?? pino({ level: config.LOG_LEVEL })
  const newId = () => randomUUID()
  const now = () => iso(clock.now())
  const metrics = new Metrics()
  const bus = createBus()
  const closers: Array<() => Promise<void>> = []
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {})
  }

  try {
    mkdirSync(config.DATA_DIR, { recursive: true })
    const store = createSqliteStore({ filename: databasePath(config.DATA_DIR), newId, now, onEvents: (events) => bus.emit('eventsCommitted', events) })
    closers.push(() => store.close())
    await store.devices.markAllOffline()

    const admin = await resolveAdminKey(store, config.ADMIN_API_KEY)
    const workspaces = createWorkspaceService({ store, newId, now, adminKeyHash: admin.hash })
    const credentials = await bootstrap(store, workspaces, config.DATA_DIR, admin.generated)

    const servicePassword = config.MQTT_SERVICE_PASSWORD ?? newServiceSecret()
    const servicePasswordHash = sha256(servicePassword)
    let broker: Broker | undefined
    if (config.EMBEDDED_BROKER) {
      broker = await createBroker({
        host: config.MQTT_HOST,
        port: config.MQTT_PORT,
        async authenticate(username, password) {
          if (username === config.MQTT_SERVICE_USERNAME) {
            return sameDigest(sha256(password), servicePasswordHash) ? { kind: 'service' } : undefined
          }
          const stored = await store.devices.secretHash(username)
          return stored && sameDigest(sha256(password), stored) ? { kind: 'device', deviceId: username } : undefined
        },
        onRefused(reason, clientId, detail) {
          metrics.inc('mqtt_refusals_total', { reason })
          log.warn({ reason, clientId, detail }, 'mqtt refused')
        },
      })
      const embedded = broker
      closers.push(() => embedded.close())
    }
    const mqttUrl = config.MQTT_URL ?? `mqtt://127.0.0.1:${broker?.port ?? config.MQTT_PORT}`
    const mqttPublicUrl = config.MQTT_PUBLIC_URL ?? (config.MQTT_URL ? mqttUrl : `mqtt://${hostForUrl(config.MQTT_HOST)}:${broker?.port ?? config.MQTT_PORT}`)

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
        send: (deviceId, command) => (link.client ? link.client.send(deviceId, command) : Promise.reject(new Error('MQTT client not connected'))),
      },
      actionTimeoutMs: config.ACTION_TIMEOUT_MS,
      lockResponseWaitMs: config.LOCK_RESPONSE_WAIT_MS,
      onError,
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

    const client = await connectOrchestrator({
      url: mqttUrl,
      username: config.MQTT_SERVICE_USERNAME,
      password: servicePassword,
      onMessage: handleDeviceMessage,
      onError,
    })
    link.client = client
    closers.push(() => client.close())
    await attempts.recover()

    const http = await createHttpServer({
      workspaces,
      devices,
      attempts,
      metrics,
      ready: () => client.connected,
      gauges: () => ({ mqtt_connected_clients: broker?.connectedClients() ?? 0, attempts_pending_timers: attempts.pendingTimers() }),
      logger: log,
      version: '0.1.0',
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
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
