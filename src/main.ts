import { ConfigError, loadConfig } from './config.js'
import { DataDirLockedError } from './compose/data-dir-lock.js'
import { ListenError } from './compose/listen.js'
import { stopOnSignals } from './compose/signals.js'
import { startLatchkey } from './latchkey.js'
import { bannerText, createLogger, logBanner, prettyLogs, startupFacts } from './startup-output.js'
import { DatabaseUnreachableError } from './store/errors.js'

/** `npm start`: run latchkey on its embedded defaults until SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(2)
    }
    throw error
  }
  const tty = process.stdout.isTTY === true
  const latchkey = await startLatchkey(config, { logger: createLogger(config, tty) })
  const log = latchkey.log
  stopOnSignals({
    close: () => latchkey.close(),
    log,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    exit: (code) => process.exit(code),
  })
  // Renewed certificates: new HTTPS and MQTTS connections get them, connected locks stay (docs/operations.md).
  // Without TLS, SIGHUP keeps its default meaning.
  if (config.TLS_CERT_FILE) {
    process.on('SIGHUP', () => {
      try {
        latchkey.reloadTls()
      } catch (error) {
        log.error({ err: error }, 'TLS reload failed; the previous certificate stays in use')
      }
    })
  }

  // Last: whoever waits for the banner may signal at once, and the handlers above are in place by then. The start
  // has completed here, so the credentials count as shown before the banner goes out: a later start no longer
  // repeats them (docs/operations.md#first-start), even when this one is stopped the moment the banner appears.
  const facts = startupFacts(latchkey, config)
  if (latchkey.bootstrap) await latchkey.credentialsShown()
  if (prettyLogs(config, tty)) process.stdout.write(bannerText(facts))
  else logBanner(log, facts)
}

main().catch((error: unknown) => {
  // A database that cannot be reached, or a port that cannot be opened, is the operator's to fix: one line naming
  // its variable (DATABASE_URL without its password, PORT, MQTT_PORT, DATA_DIR in use…), no stack trace.
  if (
    error instanceof DatabaseUnreachableError ||
    error instanceof ListenError ||
    error instanceof DataDirLockedError
  ) {
    console.error(`latchkey failed to start: ${error.message}`)
  } else console.error('latchkey failed to start:', error)
  process.exit(1)
})
