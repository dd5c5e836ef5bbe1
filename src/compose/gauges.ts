import type { Broker } from '../../broker/index.js'
import type { AttemptService } from '../app/attempts.js'
import type { GaugeSources } from '../app/metrics.js'
import type { Store } from '../app/store.js'
import type { Clock } from '../domain/clock.js'
import type { Dispatcher } from '../webhooks/dispatcher.js'

export interface GaugeParts {
  store: Pick<Store, 'devices' | 'deliveries'>
  clock: Clock
  /** Absent with an external broker: its clients are not ours to count. */
  broker: Pick<Broker, 'connectedClients'> | undefined
  attempts: Pick<AttemptService, 'pendingTimers'>
  dispatcher: Pick<Dispatcher, 'stats'>
}

/** The /metrics gauges, read when it is scraped (docs/operations.md#metrics). */
export function gaugeSources(parts: GaugeParts): GaugeSources {
  const { store, clock, dispatcher } = parts
  // The two delivery gauges share one read per scrape.
  let owed: ReturnType<Store['deliveries']['owedSummary']> | undefined
  const summary = () => (owed ??= store.deliveries.owedSummary().finally(() => (owed = undefined)))
  return {
    devices_connected: () => store.devices.countOnline(),
    mqtt_connected_clients: () => parts.broker?.connectedClients() ?? 0,
    action_attempts_pending: () => parts.attempts.pendingTimers(),
    webhook_deliveries_queued: () => dispatcher.stats().queued,
    webhook_deliveries_in_flight: () => dispatcher.stats().inFlight,
    webhook_deliveries_held: async () => (await summary()).held,
    webhook_oldest_owed_delivery_age_seconds: async () => {
      const { oldestOwedAt } = await summary()
      return oldestOwedAt === null ? 0 : Math.max(0, (clock.now() - Date.parse(oldestOwedAt)) / 1000)
    },
  }
}
