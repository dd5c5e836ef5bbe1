import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { markCredentialsShown, type BootstrapCredentials } from './app/bootstrap.js'
import type { Metrics } from './app/metrics.js'
import type { Store } from './app/store.js'
import { startBroker } from './compose/broker.js'
import { startDispatcher } from './compose/dispatcher.js'
import { gaugeSources } from './compose/gauges.js'
import { startHttp } from './compose/http.js'
import { mqttAuthDeps } from './compose/mqtt-auth.js'
import { startProvisioner } from './compose/provisioning.js'
import { startRetention } from './compose/retention.js'
import { createRuntime } from './compose/runtime.js'
import { createDeliveryApis, createServices } from './compose/services.js'
import { openStore, recoverWhenRestored } from './compose/store.js'
import { createTransport, startTransport } from './compose/transport.js'
import type { Config } from './config.js'
import { readTlsContext } from './tls.js'
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
  /**
   * Present on the first start of an empty database, and on later starts until `credentialsShown()` is called (a
   * first start that failed after creating the database has not shown them).
   */
  bootstrap: BootstrapCredentials | undefined
  /** The bootstrap credentials were shown to the operator: later starts no longer return them. */
  credentialsShown(): Promise<void>
  /** An admin key generated on this start (when ADMIN_API_KEY is unset and none existed). */
  generatedAdminKey: string | undefined
  metrics: Metrics
  http: FastifyInstance
  log: Logger
  /** Read access for tests and benchmarks (e.g. the recorded webhook attempts). */
  store: Store
  /** The embedded broker's device listeners (plain and/or TLS), for the start-up banner. */
  brokerUrls: string[]
  /**
   * Re-reads TLS_CERT_FILE and TLS_KEY_FILE for new HTTPS and MQTTS connections (SIGHUP); throws and keeps the old
   * pair when the new one is unusable.
   */
  reloadTls(): void
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
    const tls = readTlsContext(config)
    const mqtt = await startBroker(config, rt, store, tls)
    const provisioner = await startProvisioner(config, rt, store, mqtt)
    const transport = createTransport(config, rt, mqtt)
    const services = await createServices(config, rt, {
      store,
      commands: transport,
      sessions: { disconnect: (deviceId) => mqtt.broker?.disconnect(deviceId) },
      mqttPublicUrl: mqtt.urls.public,
      resolve: options.resolve,
      provisioner,
      // The in-process transport takes devices' messages concurrently: they can share the loop turn's commit.
      urgentDeviceWrites: !mqtt.broker,
    })
    await startTransport(rt, transport, services)
    recoverWhenRestored(store, services.attempts, rt)
    const dispatcher = await startDispatcher(config, rt, {
      store,
      guard: services.guard,
      random: options.random ?? Math.random,
    })
    const deliveryApis = await createDeliveryApis(config, rt, store, dispatcher)
    startRetention(config, rt, store)
    rt.metrics.gauges(
      gaugeSources({ store, clock: rt.clock, broker: mqtt.broker, attempts: services.attempts, dispatcher }),
    )
    const { http, url } = await startHttp(config, rt, {
      services,
      deliveryApis,
      ready: () => transport.connected && store.ready(),
      tls,
      mqttAuth: mqttAuthDeps(config, rt, store, mqtt.servicePassword),
    })
    return {
      httpUrl: url,
      mqttUrl: mqtt.urls.public,
      brokerUrls: mqtt.deviceUrls,
      reloadTls() {
        const renewed = readTlsContext(config)
        if (!renewed) return
        ;(http.server as unknown as { setSecureContext(context: typeof renewed): void }).setSecureContext(renewed)
        mqtt.broker?.setSecureContext(renewed)
        rt.log.info('TLS certificate reloaded')
      },
      bootstrap: services.bootstrap,
      credentialsShown: () => markCredentialsShown(config.DATA_DIR),
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
