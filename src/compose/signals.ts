import type { Logger } from 'pino'

export interface SignalDeps {
  close: () => Promise<void>
  log: Pick<Logger, 'info' | 'error'>
  /** Shutdown deadline: past it the process exits with status 1 (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number
  exit: (code: number) => void
  /** Where signals come from; the process by default. */
  on?: (signal: NodeJS.Signals, handler: () => void) => void
}

const SIGNAL_NUMBERS: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 2, SIGTERM: 15 }

/**
 * Ctrl-C under `npm start` reaches latchkey twice at once: from the terminal (the whole foreground process group)
 * and forwarded by npm. A signal this soon after the first is that same one, not an operator insisting.
 */
export const REPEAT_GRACE_MS = 500

/**
 * SIGTERM or SIGINT starts a shutdown (docs/operations.md#shutdown): exit 0 once every part closed, 1 when closing
 * failed or outlived its deadline; a second signal during shutdown (after REPEAT_GRACE_MS) exits at once with
 * 128 + its number.
 * The deadline timer is real time on purpose: it guards the process, not a product decision.
 */
export function stopOnSignals(deps: SignalDeps): void {
  const on = deps.on ?? ((signal, handler) => process.on(signal, handler))
  let stopping = false
  let insisting = false
  const stop = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopping) {
      if (!insisting) return
      deps.log.error(`${signal} during shutdown: exiting now`)
      deps.exit(128 + SIGNAL_NUMBERS[signal])
      return
    }
    stopping = true
    deps.log.info(`${signal}: shutting down`)
    setTimeout(() => {
      insisting = true
      deps.log.info('still shutting down; a second SIGTERM or SIGINT exits at once')
    }, REPEAT_GRACE_MS).unref()
    const deadline = setTimeout(() => {
      deps.log.error(`shutdown did not finish within ${deps.timeoutMs} ms: exiting`)
      deps.exit(1)
    }, deps.timeoutMs)
    deadline.unref()
    deps.close().then(
      () => {
        clearTimeout(deadline)
        deps.exit(0)
      },
      (error: unknown) => {
        clearTimeout(deadline)
        deps.log.error({ err: error }, 'shutdown failed')
        deps.exit(1)
      },
    )
  }
  on('SIGTERM', () => stop('SIGTERM'))
  on('SIGINT', () => stop('SIGINT'))
}
