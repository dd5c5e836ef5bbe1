import { pino, type Logger } from 'pino'
import { createBus, type Bus } from '../app/bus.js'
import { Metrics, recordSettledAttempt } from '../app/metrics.js'
import { systemClock } from '../app/system-clock.js'
import type { Config } from '../config.js'
import { iso, type Clock } from '../domain/clock.js'
import { Lifecycle } from './lifecycle.js'

/** What every step of the composition root shares: time, logging, counters, the in-process bus, the lifecycle. */
export interface Runtime {
  clock: Clock
  now: () => string
  log: Logger
  metrics: Metrics
  bus: Bus
  lifecycle: Lifecycle
  /** A failure in the background (a timer, a message handler): logged, never thrown. */
  onError: (error: unknown, context: string) => void
}

export function createRuntime(config: Pick<Config, 'LOG_LEVEL'>, options: { clock?: Clock; logger?: Logger }): Runtime {
  const clock = options.clock ?? systemClock
  const log = options.logger ?? pino({ level: config.LOG_LEVEL })
  const metrics = new Metrics()
  const bus = createBus()
  bus.on('attemptSettled', (attempt) => recordSettledAttempt(metrics, attempt))
  return {
    clock,
    now: () => iso(clock.now()),
    log,
    metrics,
    bus,
    lifecycle: new Lifecycle((error, part) => log.error({ err: error, part }, 'close failed')),
    onError: (error, context) => log.error({ err: error, context }, 'background failure'),
  }
}
