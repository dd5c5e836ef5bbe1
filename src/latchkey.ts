import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { BootstrapCredentials } from './app/bootstrap.js'
import type { Metrics } from './app/metrics.js'
import type { Store } from './app/store.js'
import { startBroker } from './compose/broker.js'
import { startDispatcher } from './compose/dispatcher.js'
import { gauges } from './compose/gauges.js'
import { startHttp } from './compose/http.js'
import { createRuntime } from './compose/runtime.js'
import { createDeliveryApis, createServices } from './compose/services.js'
import { openStore } from './compose/store.js'
import { createTransport, startTransport } from './compose/transport.js'
import type { Config } from './config.js'
import type { Clock } from './domain/clock.js'
import type { Resolve } from './webhooks/ssrf.js'

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
  /** Closes every part in reverse order of start; safe to call twice. */
  close(): Promise<void>
}

/**
 * The composition root, in named steps (src/compose/): store → broker and device auth → services → transport →
 * webhook dispatcher → http. Each step registers what it started on one lifecycle stack, closed in reverse
 * (docs/design.md#start-up-and-shutdown).
 * Used by `npm start` and, in-process, by the tests.
 */
export async function startLatchkey(config: Config, options: StartOptions = {}): Promise<Latchkey> {
  const rt = createRuntime(config, options)
  const close = () => rt.lifecycle.close()
  try {
    const store = await openStore(config, rt)
    const mqtt = await startBroker(config, rt, store)
    const transport = createTransport(config, rt, mqtt)
    const services = await createServices(config, rt, {
      store,
      commands: transport,
      sessions: { disconnect: (deviceId) => mqtt.broker?.disconnect(deviceId) },
      mqttPublicUrl: mqtt.urls.public,
      resolve: options.resolve,
      // The in-process transport takes devices' messages concurrently: they can share the loop turn's commit.
      urgentDeviceWrites: !mqtt.broker,
    })
    await startTransport(rt, transport, services)
    const dispatcher = await startDispatcher(config, rt, {
      store,
      guard: services.guard,
      random: options.random ?? Math.random,
    })
    const deliveryApis = await createDeliveryApis(config, rt, store, dispatcher)
    const { http, url } = await startHttp(config, rt, {
      services,
      deliveryApis,
      ready: () => transport.connected && store.ready(),
      gauges: gauges({ broker: mqtt.broker, attempts: services.attempts, dispatcher }),
    })
    return {
      httpUrl: url,
      mqttUrl: mqtt.urls.public,
      bootstrap: services.bootstrap,
      generatedAdminKey: services.generatedAdminKey,
      metrics: rt.metrics,
      http,
      log: rt.log,
      store,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
