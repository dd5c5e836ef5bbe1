import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import { createDispatcher, type Dispatcher } from '../webhooks/dispatcher.js'
import { createHttpSender } from '../webhooks/http-sender.js'
import type { UrlGuard } from '../webhooks/ssrf.js'
import type { Runtime } from './runtime.js'

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
  >,
  rt: Pick<Runtime, 'clock' | 'bus' | 'metrics' | 'log' | 'onError' | 'lifecycle'>,
  deps: { store: Pick<Store, 'deliveries'>; guard: UrlGuard; random: () => number },
): Promise<Dispatcher> {
  const dispatcher = createDispatcher({
    deliveries: deps.store.deliveries,
    bus: rt.bus,
    clock: rt.clock,
    sender: createHttpSender({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, clock: rt.clock, guard: deps.guard }),
    metrics: rt.metrics,
    policy: {
      scheduleSeconds: config.WEBHOOK_RETRY_SCHEDULE,
      disableAfter: config.WEBHOOK_DISABLE_AFTER,
      random: deps.random,
    },
    limits: { total: config.WEBHOOK_CONCURRENCY, perWebhook: config.WEBHOOK_CONCURRENCY_PER_WEBHOOK },
    onError: rt.onError,
    warn: (detail, message) => rt.log.warn(detail, message),
  })
  await dispatcher.start()
  rt.lifecycle.defer('dispatcher', () => dispatcher.close())
  return dispatcher
}
