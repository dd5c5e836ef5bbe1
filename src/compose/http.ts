import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config.js'
import type { MqttAuthDeps } from '../http/mqtt-auth/plugin.js'
import { createHttpServer } from '../http/server.js'
import type { Runtime } from './runtime.js'
import type { DeliveryApis, Services } from './services.js'
import { listenAs } from './listen.js'
import type { TlsContext } from '../tls.js'
import { httpUrl } from './urls.js'
import { packageVersion } from './version.js'

export interface HttpDeps {
  services: Services
  deliveryApis: DeliveryApis
  /** True once the store, the broker and the transport are up. */
  ready: () => boolean
  /** PEM certificate and key: HTTPS instead of HTTP (docs/operations.md#tls). */
  tls: TlsContext | undefined
  /** The broker callbacks, when MQTT_DEVICE_AUTH=http. */
  mqttAuth?: MqttAuthDeps | undefined
}

/** Step 6: the HTTP server, listening. */
export async function startHttp(
  config: Pick<
    Config,
    'HOST' | 'PORT' | 'PUBLIC_URL' | 'RATE_LIMIT_PER_MINUTE' | 'RATE_LIMIT_AUTH_FAILURES_PER_MINUTE' | 'METRICS_TOKEN'
  >,
  rt: Pick<Runtime, 'metrics' | 'log' | 'lifecycle' | 'bus'>,
  deps: HttpDeps,
): Promise<{ http: FastifyInstance; url: string }> {
  const { services } = deps
  const http = await createHttpServer({
    workspaces: services.workspaces,
    devices: services.devices,
    attempts: services.attempts,
    events: services.events,
    webhooks: services.webhooks,
    ...deps.deliveryApis,
    bus: rt.bus,
    metrics: rt.metrics,
    ready: deps.ready,
    metricsToken: config.METRICS_TOKEN,
    ...(deps.tls ? { https: deps.tls } : {}),
    logger: rt.log,
    version: packageVersion(),
    publicUrl: config.PUBLIC_URL,
    rateLimits: {
      perKeyPerMinute: config.RATE_LIMIT_PER_MINUTE,
      authFailuresPerMinute: config.RATE_LIMIT_AUTH_FAILURES_PER_MINUTE,
    },
    mqttAuth: deps.mqttAuth,
  })
  // fastify logs a "Server listening" line per address; src/main.ts names every address once, in its banner.
  const level = http.log.level
  if (rt.log.isLevelEnabled('info')) http.log.level = 'warn'
  await listenAs([{ variable: 'PORT', host: config.HOST, port: config.PORT }], () =>
    http.listen({ host: config.HOST, port: config.PORT }),
  ).finally(() => (http.log.level = level))
  rt.lifecycle.defer('http', () => http.close())
  // Runs first on close: waiting requests answer with the attempt as it stands; pending attempts stay committed
  // and are recovered by the next start.
  rt.lifecycle.defer('attempts', () => services.attempts.close())
  const { port } = http.server.address() as AddressInfo
  return { http, url: httpUrl(config.HOST, port, deps.tls !== undefined) }
}
