import type { Broker } from '../../broker/index.js'
import type { AttemptService } from '../app/attempts.js'
import type { Dispatcher } from '../webhooks/dispatcher.js'

export interface GaugeSources {
  /** Absent with an external broker: its clients are not ours to count. */
  broker: Pick<Broker, 'connectedClients'> | undefined
  attempts: Pick<AttemptService, 'pendingTimers'>
  dispatcher: Pick<Dispatcher, 'stats'>
}

/** The gauges of /metrics, read when it is scraped. */
export function gauges(sources: GaugeSources): () => Record<string, number> {
  return () => {
    const { queued, inFlight } = sources.dispatcher.stats()
    return {
      mqtt_connected_clients: sources.broker?.connectedClients() ?? 0,
      attempts_pending_timers: sources.attempts.pendingTimers(),
      webhook_deliveries_queued: queued,
      webhook_deliveries_in_flight: inFlight,
    }
  }
}
