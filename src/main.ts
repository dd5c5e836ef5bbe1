import { ConfigError, loadConfig } from './config.js'
import { ListenError } from './compose/listen.js'
import { stopOnSignals } from './compose/signals.js'
import { startLatchkey } from './latchkey.js'

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
  const latchkey = await startLatchkey(config)
  const log = latchkey.log
  // Before anything is printed: whoever sees the start-up lines may signal at once.
  stopOnSignals({
    close: () => latchkey.close(),
    log,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    exit: (code) => process.exit(code),
  })
  log.info(`latchkey HTTP listening on ${latchkey.httpUrl}`)
  log.info(`latchkey MQTT broker for devices at ${latchkey.mqttUrl}`)
  if (latchkey.bootstrap) {
    const lines = [
      '',
      '  First start: created the default workspace. These credentials are shown once',
      `  (also written to ${config.DATA_DIR}/bootstrap.json, mode 0600):`,
      `    workspace_id   ${latchkey.bootstrap.workspace_id}`,
      `    api_key        ${latchkey.bootstrap.api_key}`,
      ...(latchkey.bootstrap.admin_api_key ? [`    admin_api_key  ${latchkey.bootstrap.admin_api_key}`] : []),
      '',
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    await latchkey.credentialsShown()
  } else if (latchkey.generatedAdminKey) {
    process.stdout.write(`\n  Generated admin API key (shown once): ${latchkey.generatedAdminKey}\n\n`)
  }
}

main().catch((error: unknown) => {
  // A port that cannot be opened is the operator's to fix: one line naming its variable, no stack trace.
  if (error instanceof ListenError) console.error(`latchkey failed to start: ${error.message}`)
  else console.error('latchkey failed to start:', error)
  process.exit(1)
})
