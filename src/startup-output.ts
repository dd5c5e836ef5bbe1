import { pino, type Logger } from 'pino'
import { PinoPretty } from 'pino-pretty'
import { join } from 'node:path'
import type { Config } from './config.js'
import type { Latchkey } from './latchkey.js'

/**
 * What `npm start` prints: logs pretty on a terminal and JSON lines otherwise (LOG_FORMAT), and one start-up
 * banner, after everything listens, in a fixed order.
 */

export function prettyLogs(config: Pick<Config, 'LOG_FORMAT'>, tty: boolean): boolean {
  return config.LOG_FORMAT === 'pretty' || (config.LOG_FORMAT === 'auto' && tty)
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_FORMAT'>, tty: boolean): Logger {
  if (!prettyLogs(config, tty)) return pino({ level: config.LOG_LEVEL })
  // In-process and synchronous, so that log lines and the banner come out in the order they were written.
  const stream = PinoPretty({ colorize: tty, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
  return pino({ level: config.LOG_LEVEL }, stream)
}

export interface StartupFacts {
  httpUrl: string
  mqttUrl: string
  /** Every listener of the embedded broker (plain and TLS); empty with an external broker. */
  brokerUrls: string[]
  dashboardUrl: string
  docsUrl: string
  metricsUrl: string
  /** DATA_DIR/bootstrap.json: the first start's credentials. */
  credentialsFile: string
  /** Shown once: the first start's workspace and keys, or an admin key generated on this start. */
  credentials: Record<string, string> | undefined
}

export function startupFacts(latchkey: Latchkey, config: Pick<Config, 'DATA_DIR'>): StartupFacts {
  const credentials = latchkey.bootstrap
    ? { ...latchkey.bootstrap }
    : latchkey.generatedAdminKey
      ? { admin_api_key: latchkey.generatedAdminKey }
      : undefined
  return {
    httpUrl: latchkey.httpUrl,
    mqttUrl: latchkey.mqttUrl,
    brokerUrls: latchkey.brokerUrls,
    dashboardUrl: `${latchkey.httpUrl}/dashboard`,
    docsUrl: `${latchkey.httpUrl}/docs`,
    metricsUrl: `${latchkey.httpUrl}/metrics`,
    credentialsFile: join(config.DATA_DIR, 'bootstrap.json'),
    credentials,
  }
}

/** The banner as text, for a terminal. */
export function bannerText(facts: StartupFacts): string {
  const lines = [
    '',
    '  latchkey is running',
    `    HTTP API     ${facts.httpUrl}`,
    `    Dashboard    ${facts.dashboardUrl}`,
    `    API docs     ${facts.docsUrl}`,
    `    Metrics      ${facts.metricsUrl}`,
    `    MQTT broker  ${facts.mqttUrl}   (devices connect here)`,
    ...facts.brokerUrls.filter((url) => url !== facts.mqttUrl).map((url) => `    MQTT also    ${url}`),
    `    Credentials  ${facts.credentialsFile}   (mode 0600, written at first start)`,
  ]
  if (facts.credentials) {
    lines.push('', '  Shown once (keep them; the database stores only their hashes):')
    for (const [name, value] of Object.entries(facts.credentials)) lines.push(`    ${name.padEnd(14)} ${value}`)
  }
  lines.push('')
  return `${lines.join('\n')}\n`
}

/** The banner as one JSON log record, for log collectors; its fields are stable (tests and tools parse them). */
export function logBanner(log: Logger, facts: StartupFacts): void {
  log.info(
    {
      http_url: facts.httpUrl,
      mqtt_url: facts.mqttUrl,
      broker_urls: facts.brokerUrls,
      dashboard_url: facts.dashboardUrl,
      docs_url: facts.docsUrl,
      metrics_url: facts.metricsUrl,
      credentials_file: facts.credentialsFile,
      ...(facts.credentials ? { credentials: facts.credentials } : {}),
    },
    `latchkey started: HTTP ${facts.httpUrl}, MQTT ${facts.mqttUrl}`,
  )
}
