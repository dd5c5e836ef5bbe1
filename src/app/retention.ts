import { iso, type Clock, type TimerHandle } from '../domain/clock.js'
import type { PruneResult, RetentionStore } from './store.js'

const DAY_MS = 24 * 60 * 60 * 1000
/** An idempotency key is honoured for 24 h (docs/api.md#idempotency); after that it can be freed. */
const IDEMPOTENCY_WINDOW_MS = DAY_MS

export interface RetentionDeps {
  store: { retention: RetentionStore }
  clock: Clock
  /** RETENTION_DAYS; 0 keeps everything and starts no timer. */
  retentionDays: number
  onError: (error: unknown, context: string) => void
  /** Rows examined per table and batch. */
  batchSize?: number
  /** Pause between two batches of one round: the event loop and other writers get their turn. */
  batchPauseMs?: number
  /** Pause between two rounds, once a round found nothing more to delete. */
  idleMs?: number
  /** Called after each batch (metrics, tests). */
  onBatch?: (result: PruneResult) => void
}

export const RETENTION_DEFAULTS = { batchSize: 500, batchPauseMs: 100, idleMs: 60_000 }

/**
 * Deletes what is past RETENTION_DAYS off the hot path (docs/operations.md#retention): one bounded batch per timer
 * tick, through the injected clock; the next tick is armed only once a batch has committed, so at most one batch
 * is ever in flight.
 */
export function createRetention(deps: RetentionDeps) {
  const batchSize = deps.batchSize ?? RETENTION_DEFAULTS.batchSize
  const batchPauseMs = deps.batchPauseMs ?? RETENTION_DEFAULTS.batchPauseMs
  const idleMs = deps.idleMs ?? RETENTION_DEFAULTS.idleMs
  const retentionMs = deps.retentionDays * DAY_MS
  let timer: TimerHandle | undefined
  let stopped = false

  function arm(ms: number): void {
    if (stopped) return
    timer = deps.clock.setTimeout(() => {
      timer = undefined
      void tick()
    }, ms)
  }

  async function tick(): Promise<void> {
    let more = false
    try {
      const now = deps.clock.now()
      const result = await deps.store.retention.prune(
        { before: iso(now - retentionMs), keysBefore: iso(now - IDEMPOTENCY_WINDOW_MS) },
        batchSize,
      )
      more = result.more
      deps.onBatch?.(result)
    } catch (error) {
      deps.onError(error, 'retention')
    }
    arm(more ? batchPauseMs : idleMs)
  }

  return {
    /** Arms the first batch; a no-op when retention is off. */
    start(): void {
      if (deps.retentionDays > 0) arm(batchPauseMs)
    },
    stop(): void {
      stopped = true
      if (timer !== undefined) deps.clock.clearTimeout(timer)
      timer = undefined
    },
  }
}

export type Retention = ReturnType<typeof createRetention>
