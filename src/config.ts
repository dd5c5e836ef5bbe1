import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { z } from 'zod'

/**
 * The whole environment latchkey reads, in one schema (docs/configuration.md). This module is the only reader of
 * `process.env`; docs/configuration.md is checked against this schema by a test.
 */
const port = z.coerce.number().int().min(0).max(65535)
const positiveMs = z.coerce.number().int().positive()
const bool = z.stringbool()
const optionalSecret = z.string().min(16).optional()

const retrySchedule = z.string().transform((text, ctx) => {
  const parts = text.split(',').map((part) => Number(part.trim()))
  if (parts.length === 0 || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    ctx.addIssue({ code: 'custom', message: 'expected comma-separated non-negative numbers of seconds' })
    return z.NEVER
  }
  return parts
})

/** `address/prefix` with a valid IPv4 (prefix 0–32) or IPv6 (prefix 0–128) address. */
export function isCidr(text: string): boolean {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text)
  if (!match) return false
  const [, address = '', prefix = ''] = match
  const family = isIP(address)
  const max = family === 4 ? 32 : family === 6 ? 128 : -1
  return max >= 0 && Number(prefix) <= max
}

const cidrList = z.string().transform((text, ctx) => {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
  const bad = items.filter((item) => !isCidr(item))
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `not CIDR notation: ${bad.join(', ')}` })
    return z.NEVER
  }
  return items
})

export const ConfigSchema = z.object({
  HOST: z.string().min(1).default('0.0.0.0').describe('Interface the HTTP server binds to.'),
  PORT: port.default(3000).describe('HTTP port; 0 picks a free port (the actual one is logged).'),
  MQTT_HOST: z.string().min(1).default('0.0.0.0').describe('Interface the embedded MQTT broker binds to.'),
  MQTT_PORT: port.default(1883).describe('TCP port of the embedded MQTT broker; 0 picks a free port.'),
  EMBEDDED_BROKER: bool
    .default(true)
    .describe('Run the embedded aedes broker. Set to false to use an external broker at MQTT_URL.'),
  MQTT_URL: z
    .url()
    .optional()
    .describe('Broker the orchestrator connects to. Default: the embedded broker on loopback.'),
  MQTT_PUBLIC_URL: z
    .url()
    .optional()
    .describe('Broker URL handed to devices in `mqtt_credentials`. Default: MQTT_URL, or mqtt://<host>:<MQTT_PORT>.'),
  MQTT_MAX_PACKET_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(268_435_455)
    .default(20_480)
    .describe(
      'Largest MQTT packet the embedded broker reads; a connection announcing a larger one is closed before it is buffered.',
    ),
  MQTT_DEVICE_PUBLISH_RATE: z.coerce
    .number()
    .positive()
    .default(20)
    .describe(
      'Messages per second a device may publish on average; the excess is dropped and counted (embedded broker).',
    ),
  MQTT_DEVICE_PUBLISH_BURST: z.coerce
    .number()
    .int()
    .positive()
    .default(100)
    .describe('Messages a device may publish at once above MQTT_DEVICE_PUBLISH_RATE (token bucket size).'),
  MQTT_AUTH_FAILURES_PER_MINUTE: z.coerce
    .number()
    .int()
    .positive()
    .default(20)
    .describe('Failed MQTT logins allowed per client address per minute; further connects from it are refused.'),
  MQTTS_PORT: port
    .default(8883)
    .describe('Port of MQTT over TLS when TLS_CERT_FILE is set; 0 picks a free port (the actual one is logged).'),
  MQTT_PLAINTEXT: bool
    .default(true)
    .describe(
      'Serve devices plain MQTT on MQTT_PORT. With false (TLS only) that port listens on loopback for the orchestrator alone.',
    ),
  TLS_CERT_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PEM certificate chain. With TLS_KEY_FILE: HTTPS on PORT and MQTT over TLS on MQTTS_PORT; SIGHUP reloads.',
    ),
  TLS_KEY_FILE: z.string().min(1).optional().describe('PEM private key of TLS_CERT_FILE.'),
  MQTT_SERVICE_USERNAME: z
    .string()
    .min(1)
    .default('latchkey-orchestrator')
    .describe("Username of the orchestrator's own MQTT client."),
  MQTT_SERVICE_PASSWORD: optionalSecret.describe(
    "Password of the orchestrator's MQTT client. Generated per process when unset (embedded broker only).",
  ),
  MQTT_DEVICE_AUTH: z
    .enum(['embedded', 'dynsec', 'http'])
    .default('embedded')
    .describe(
      'How the broker learns device credentials: embedded (the aedes hooks), dynsec (latchkey provisions mosquitto ' +
        "2's dynamic security as its admin) or http (the broker calls latchkey's /mqtt-auth callbacks).",
    ),
  MQTT_AUTH_SECRET: optionalSecret.describe(
    'Shared secret the broker presents to the /mqtt-auth callbacks (header x-latchkey-auth-secret). Required when ' +
      'MQTT_DEVICE_AUTH=http.',
  ),
  INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 letters, digits, _ or -')
    .optional()
    .describe(
      'Name of this instance among several: its MQTT client id is latchkey-<INSTANCE_ID>. Random per start when unset.',
    ),
  DATA_DIR: z.string().min(1).default('./data').describe('Directory of the SQLite database and bootstrap.json.'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected postgres://USER:PASS@HOST:PORT/DB')
    .optional()
    .describe('PostgreSQL to store everything in, instead of SQLite in DATA_DIR (postgres://USER:PASS@HOST:PORT/DB).'),
  DATABASE_POOL_MAX: z.coerce
    .number()
    .int()
    .min(2)
    .max(1000)
    .default(10)
    .describe('Connections latchkey keeps open to PostgreSQL at most (one of them writes).'),
  ADMIN_API_KEY: z
    .string()
    .min(24)
    .regex(/^seam_/, 'must start with seam_ (the Seam SDK refuses other keys)')
    .optional()
    .describe('Admin API key. When unset, one is generated at first start, stored hashed and printed once.'),
  JWT_SECRET: z
    .string()
    .min(32)
    .optional()
    .describe('HS256 secret for tenant tokens. Generated and persisted at first start when unset.'),
  ACTION_TIMEOUT_MS: positiveMs.default(8000).describe('Deadline of an action attempt, from its creation.'),
  LOCK_RESPONSE_WAIT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(500)
    .describe('How long a lock/unlock request without `sync` waits for the attempt to settle.'),
  WEBHOOK_TIMEOUT_MS: positiveMs.default(15_000).describe('A webhook delivery succeeds on a 2xx within this time.'),
  WEBHOOK_RETRY_SCHEDULE: retrySchedule
    .default([5, 300, 1800, 7200, 18000, 36000, 36000])
    .describe('Delays in seconds between retries after a failed delivery, comma-separated; ±20 % jitter is applied.'),
  WEBHOOK_DISABLE_AFTER: positiveMs
    .default(100)
    .describe('Consecutive failed attempts after which a webhook is disabled.'),
  WEBHOOK_ALLOWED_CIDRS: cidrList
    .default([])
    .describe('Comma-separated CIDRs exempt from the SSRF guard, e.g. 127.0.0.0/8 for local receivers.'),
  WEBHOOK_CONCURRENCY: positiveMs.default(256).describe('Concurrent webhook requests in all.'),
  WEBHOOK_CONCURRENCY_PER_WEBHOOK: positiveMs.default(16).describe('Concurrent requests to one webhook.'),
  WEBHOOK_PIPELINING: positiveMs
    .default(1)
    .describe(
      'Requests one connection to a webhook carries at once (HTTP/1.1 pipelining); 1: one at a time. ' +
        'More costs less CPU per delivery, for receivers that answer pipelined requests concurrently.',
    ),
  DELIVERY_LEASE_MS: positiveMs
    .default(30_000)
    .describe(
      'With DATABASE_URL: how long an instance holds a webhook delivery it attempts; must exceed WEBHOOK_TIMEOUT_MS. ' +
        "A dead instance's deliveries are taken over within this plus 2 s.",
    ),
  PUBLIC_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe(
      'External base URL of the HTTP API (e.g. https://locks.example.com), used for links such as next_page_url. ' +
        "Unset: the request's own scheme and Host when the Host is a valid host name, else a relative link.",
    ),
  RATE_LIMIT_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(0)
    .default(600_000)
    .describe('Requests per minute one API key or tenant token may make (HTTP); over it, 429 rate_limited. 0: off.'),
  RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(0)
    .default(60)
    .describe(
      'Failed authentications (401) per minute from one client address; then 429 until the minute ends. 0: off.',
    ),
  METRICS_TOKEN: optionalSecret.describe(
    'Bearer token required by GET /metrics (at least 16 characters). When unset, /metrics is open.',
  ),
  LOG_FORMAT: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe('Log format: pretty (pino-pretty) on a terminal and JSON otherwise (auto), or forced.'),
  RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(0)
    .default(90)
    .describe(
      'Settled attempts, events and finished webhook deliveries older than this many days are deleted; 0 keeps everything.',
    ),
  SHUTDOWN_TIMEOUT_MS: positiveMs
    .default(10_000)
    .describe('After SIGTERM/SIGINT, exit with status 1 if shutdown has not finished within this time.'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level (pino).'),
})

/** The parsed environment; INSTANCE_ID is always set (random when the environment leaves it unset). */
export type Config = z.infer<typeof ConfigSchema> & { INSTANCE_ID: string }

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** Parses the environment once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known: Record<string, string | undefined> = {}
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = env[key]
    // An empty variable means "unset", as in most twelve-factor apps.
    if (value !== undefined && value !== '') known[key] = value
  }
  const parsed = ConfigSchema.safeParse(known)
  if (parsed.success) {
    const config = { ...parsed.data, INSTANCE_ID: parsed.data.INSTANCE_ID ?? randomBytes(6).toString('hex') }
    if (!config.EMBEDDED_BROKER && (!config.MQTT_URL || !config.MQTT_SERVICE_PASSWORD)) {
      throw new ConfigError(['MQTT_URL: and MQTT_SERVICE_PASSWORD are required when EMBEDDED_BROKER=false'])
    }
    if (config.MQTT_DEVICE_AUTH === 'dynsec' && config.EMBEDDED_BROKER) {
      throw new ConfigError(['MQTT_DEVICE_AUTH: dynsec provisions an external mosquitto; set EMBEDDED_BROKER=false'])
    }
    if (config.MQTT_DEVICE_AUTH === 'http' && !config.MQTT_AUTH_SECRET) {
      throw new ConfigError(['MQTT_AUTH_SECRET: required when MQTT_DEVICE_AUTH=http'])
    }
    if (config.DATABASE_URL && config.DELIVERY_LEASE_MS <= config.WEBHOOK_TIMEOUT_MS) {
      throw new ConfigError([
        'DELIVERY_LEASE_MS: must be longer than WEBHOOK_TIMEOUT_MS, or a slow attempt could lose its lease mid-send',
      ])
    }
    if ((config.TLS_CERT_FILE === undefined) !== (config.TLS_KEY_FILE === undefined)) {
      throw new ConfigError(['TLS_CERT_FILE: and TLS_KEY_FILE go together; set both or neither'])
    }
    if (!config.MQTT_PLAINTEXT && !config.TLS_CERT_FILE) {
      throw new ConfigError([
        'MQTT_PLAINTEXT: false needs TLS_CERT_FILE and TLS_KEY_FILE, or devices could not connect',
      ])
    }
    return config
  }
  throw new ConfigError(
    parsed.error.issues.map(
      (issue) =>
        `${issue.path.join('.') || '(root)'}: ${issue.message} (got ${JSON.stringify(shown(String(issue.path[0]), known[String(issue.path[0])]))})`,
    ),
  )
}

/** A connection URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '*****'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:*****@')
  }
}

function shown(key: string, value: string | undefined): string | undefined {
  return key === 'DATABASE_URL' && value !== undefined ? redactUrl(value) : value
}

function defaultText(schema: z.ZodType): string {
  if (!(schema instanceof z.ZodDefault)) return '(unset)'
  const value: unknown = schema.def.defaultValue
  if (Array.isArray(value)) return value.length > 0 ? value.join(',') : '(empty)'
  return String(value)
}

/** One row per variable: the table of docs/configuration.md is checked against this by a test. */
export function describeConfig(): Array<{ name: string; default: string; description: string }> {
  return Object.entries(ConfigSchema.shape).map(([name, schema]) => ({
    name,
    default: defaultText(schema),
    description: schema.description ?? '',
  }))
}
