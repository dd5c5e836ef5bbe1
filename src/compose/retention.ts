import { createRetention, type Retention } from '../app/retention.js'
import type { Store } from '../app/store.js'
import type { Config } from '../config.js'
import type { Runtime } from './runtime.js'

/** Retention: deletes what is past RETENTION_DAYS, in small batches on a timer (docs/operations.md#retention). */
export function startRetention(
  config: Pick<Config, 'RETENTION_DAYS'>,
  rt: Pick<Runtime, 'clock' | 'lifecycle' | 'onError'>,
  store: Pick<Store, 'retention'>,
): Retention {
  const retention = createRetention({
    store,
    clock: rt.clock,
    retentionDays: config.RETENTION_DAYS,
    onError: rt.onError,
  })
  retention.start()
  rt.lifecycle.defer('retention', () => retention.stop())
  return retention
}
