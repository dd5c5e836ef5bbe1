import { ConfigError, loadConfig } from './config.js'
import { startLatchkey } from './latchkey.js'
import { DatabaseUnreachableError } from './store/postgres/index.js'

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
  } else if (latchkey.generatedAdminKey) {
    process.stdout.write(`\n  Generated admin API key (shown once): ${latchkey.generatedAdminKey}\n\n`)
  }

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
}

main().catch((error: unknown) => {
  if (error instanceof DatabaseUnreachableError) {
    // One line, without the password: what to fix is the database or DATABASE_URL.
    console.error(`latchkey failed to start: ${error.message}`)
    process.exit(1)
  }
  console.error('latchkey failed to start:', error)
  process.exit(1)
})
