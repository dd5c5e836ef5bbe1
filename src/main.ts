import { ConfigError, loadConfig } from './config.js'
import { startLatchkey } from './latchkey.js'
import { bannerText, createLogger, logBanner, prettyLogs, startupFacts } from './startup-output.js'

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
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info(`${signal}: shutting down`)
    latchkey.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
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

  // Last: whoever waits for the banner may signal at once, and the handlers above are in place by then.
  const facts = startupFacts(latchkey, config)
  if (prettyLogs(config, tty)) process.stdout.write(bannerText(facts))
  else logBanner(log, facts)
}

main().catch((error: unknown) => {
  console.error('latchkey failed to start:', error)
  process.exit(1)
})
