import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { createDispatcher, type Dispatcher } from '../webhooks/dispatcher.js'
import { createHttpSender } from '../webhooks/http-sender.js'
import type { UrlGuard } from '../webhooks/ssrf.js'
import type { Runtime } from './runtime.js'

/** How often an instance on a shared database claims due deliveries nobody holds (docs/scale-out.md#deliveries). */
export const DELIVERY_POLL_MS = 1000

/**
 * Step 5: the webhook dispatcher. Deliveries committed before a crash go out again; it closes before the store,
 * after HTTP stops.
 */
export async function startDispatcher(
  config: Pick<
    Config,
    | 'WEBHOOK_TIMEOUT_MS'
    | 'WEBHOOK_RETRY_SCHEDULE'
    | 'WEBHOOK_DISABLE_AFTER'
    | 'WEBHOOK_CONCURRENCY'
    | 'WEBHOOK_CONCURRENCY_PER_WEBHOOK'
    | 'WEBHOOK_PIPELINING'
    | 'DELIVERY_LEASE_MS'
    | 'INSTANCE_ID'
  >,
  rt: Pick<Runtime, 'clock' | 'bus' | 'metrics' | 'log' | 'onError' | 'lifecycle'>,
  deps: { store: Pick<Store, 'deliveries' | 'deliveryClaims'>; guard: UrlGuard; random: () => number },
): Promise<Dispatcher> {
  const claims = deps.store.deliveryClaims
  const dispatcher = createDispatcher({
    deliveries: deps.store.deliveries,
    bus: rt.bus,
    clock: rt.clock,
    sender: createHttpSender({
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      clock: rt.clock,
      guard: deps.guard,
      pipelining: config.WEBHOOK_PIPELINING,
    }),
    metrics: rt.metrics,
    policy: {
      scheduleSeconds: config.WEBHOOK_RETRY_SCHEDULE,
      disableAfter: config.WEBHOOK_DISABLE_AFTER,
      random: deps.random,
    },
    limits: { total: config.WEBHOOK_CONCURRENCY, perWebhook: config.WEBHOOK_CONCURRENCY_PER_WEBHOOK },
    onError: rt.onError,
    warn: (detail, message) => rt.log.warn(detail, message),
    // A shared database: each automatic attempt under this instance's lease (docs/scale-out.md#deliveries).
    claims: claims && {
      store: claims,
      owner: config.INSTANCE_ID,
      leaseMs: config.DELIVERY_LEASE_MS,
      pollMs: DELIVERY_POLL_MS,
    },
  })
  await dispatcher.start()
  rt.lifecycle.defer('dispatcher', () => dispatcher.close())
  return dispatcher
}
