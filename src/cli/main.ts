import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SERVER_NODE_FLAGS } from '../compose/node-flags.js'
import { ApiClient, type Json } from './client.js'
import { childEnv, loadCliSettings, type CliSettings } from './env.js'
import { CliError, EXIT } from './errors.js'
import { offset, table, yesNo } from './format.js'

/** `latchkey …`: the operator's command line over latchkey's HTTP API (docs/cli.md). */

export const USAGE = `Usage: latchkey <command> [options]

Commands:
  serve                         run latchkey (same as npm start; configured by its environment)
  workspaces create NAME        create a workspace and its first API key (admin key)
  workspaces list               list workspaces (admin key)
  devices create NAME           create a lock; prints its MQTT credentials once
  devices list                  list the devices of the workspace
  lock DEVICE                   lock a door (id or name), wait, print the attempt and its timeline
  unlock DEVICE                 unlock a door, likewise
  events tail                   print new events as they happen (Ctrl-C to stop)
  deliveries list               recent webhook deliveries of the workspace
  simulate [options]            run simulated locks (npm run simulate -- --help)

Options:
  --json                        machine-readable output (one JSON document; events tail: one per line)
  --url URL                     latchkey's HTTP address (else LATCHKEY_URL, the config file, http://127.0.0.1:3000)
  --timeout-ms N                lock/unlock: the attempt's deadline (1000..60000; default the server's)
  --since ISO                   events tail: start from this time instead of now
  --interval-ms N               events tail: polling period (default 1000)
  --limit N                     deliveries list: how many rows (default 20, at most 100)
  --status S                    deliveries list: delivered | failed | retrying | pending
  -h, --help                    this text

Keys come from LATCHKEY_API_KEY (LATCHKEY_ADMIN_API_KEY for admin commands) or from the config file
(LATCHKEY_CONFIG, default ~/.config/latchkey/config.json, mode 0600), never from the command line.

Exit codes: 0 ok · 1 the attempt failed or did not settle · 2 usage or configuration · 3 key refused or latchkey
unreachable · 4 latchkey refused the request (not found, invalid input)
`

const OPTIONS = {
  json: { type: 'boolean' },
  url: { type: 'string' },
  'timeout-ms': { type: 'string' },
  since: { type: 'string' },
  'interval-ms': { type: 'string' },
  limit: { type: 'string' },
  status: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type Values = {
  json?: boolean
  url?: string
  'timeout-ms'?: string
  since?: string
  'interval-ms'?: string
  limit?: string
  status?: string
  help?: boolean
}

export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
  /** Resolves when the user asks to stop a long-running command (Ctrl-C); only such commands listen. */
  interrupted: () => Promise<void>
}

function usage(message: string): CliError {
  return new CliError(EXIT.usage, `${message}\n\n${USAGE}`)
}

function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${name} must be an integer from ${min} to ${max}`)
  return n
}

function print(io: Io, json: boolean, data: unknown, human: () => string): void {
  io.out(json ? JSON.stringify(data, null, 2) : human())
}

/** A device id, or a unique device name. */
async function resolveDevice(api: ApiClient, ref: string): Promise<Json> {
  try {
    return (await api.post('/devices/get', { device_id: ref })).device
  } catch (error) {
    if (!(error instanceof CliError) || error.exitCode !== EXIT.refused) throw error
  }
  const { devices } = await api.post('/devices/list', { limit: 1000 })
  const named = (devices as Json[]).filter((d) => d.display_name === ref || d.properties?.name === ref)
  if (named.length === 1) return named[0]
  if (named.length > 1) throw new CliError(EXIT.usage, `${named.length} devices are named "${ref}": use its id`)
  throw new CliError(EXIT.refused, `no device "${ref}"`)
}

async function lockCommand(api: ApiClient, io: Io, values: Values, action: 'lock' | 'unlock', ref: string) {
  const device = await resolveDevice(api, ref)
  const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', 1000, 60_000)
  // sync: the server answers once the attempt has settled (or its deadline has passed).
  const { action_attempt: attempt } = await api.post(`/locks/${action}_door`, {
    device_id: device.device_id,
    sync: true,
    ...(timeoutMs === undefined ? {} : { timeout_ms: timeoutMs }),
  })
  const { history } = await api.post('/action_attempts/history', { action_attempt_id: attempt.action_attempt_id })
  print(io, values.json === true, { action_attempt: attempt, history }, () => {
    const lines = [
      `${action} ${device.display_name} (${device.device_id}): ${attempt.status}`,
      `attempt ${attempt.action_attempt_id}`,
      ...(attempt.error ? [`error   ${attempt.error.type}: ${attempt.error.message}`] : []),
      '',
      table(
        ['AT', 'AFTER', 'STEP', 'DETAIL'],
        (history as Json[]).map((h) => [
          h.at,
          offset(attempt.created_at, h.at) || '+0 ms',
          h.kind,
          h.detail ? JSON.stringify(h.detail) : '',
        ]),
      ),
    ]
    return lines.join('\n')
  })
  return attempt.status === 'success' ? EXIT.ok : EXIT.attemptFailed
}

/** Every event at or after `since`, newest first, following the pages (bounded: a burst beyond is skipped). */
async function eventsSince(api: ApiClient, since: string): Promise<Json[]> {
  const all: Json[] = []
  let cursor: string | undefined
  for (let page = 0; page < 20; page++) {
    const res = await api.post('/events/list', { since, limit: 1000, ...(cursor ? { page_cursor: cursor } : {}) })
    all.push(...(res.events as Json[]))
    cursor = res.pagination?.next_page_cursor ?? undefined
    if (!cursor) break
  }
  return all
}

async function eventsTail(api: ApiClient, io: Io, values: Values): Promise<number> {
  const intervalMs = intOption(values['interval-ms'], 'interval-ms', 100, 60_000) ?? 1000
  let since = values.since ?? new Date().toISOString()
  if (Number.isNaN(Date.parse(since))) throw usage('--since must be an ISO 8601 time')
  since = new Date(since).toISOString()
  /** Events already printed at the `since` instant: the next poll starts there again (since is inclusive). */
  let printedAtSince = new Set<string>()
  let stop = false
  const interrupted = io.interrupted().then(() => {
    stop = true
  })
  // On stderr, so that --json output stays one event per line.
  io.err(`following events since ${since} (Ctrl-C to stop)`)
  while (!stop) {
    const fresh = (await eventsSince(api, since)).filter((e) => !printedAtSince.has(e.event_id)).reverse()
    for (const e of fresh) {
      if (values.json === true) io.out(JSON.stringify(e))
      else
        io.out(
          [e.occurred_at, e.event_type, e.device_id ?? '', e.action_attempt_id ?? '', e.error_code ?? '']
            .join('  ')
            .trimEnd(),
        )
    }
    const last = fresh[fresh.length - 1]
    if (last && last.occurred_at !== since) {
      since = last.occurred_at
      printedAtSince = new Set()
    }
    for (const e of fresh) if (e.occurred_at === since) printedAtSince.add(e.event_id)
    await Promise.race([new Promise((resolve) => setTimeout(resolve, intervalMs)), interrupted])
  }
  return EXIT.ok
}

async function deliveriesList(api: ApiClient, io: Io, values: Values): Promise<number> {
  const limit = intOption(values.limit, 'limit', 1, 100) ?? 20
  const { workspace } = await api.post('/workspaces/get')
  const query = new URLSearchParams({ limit: String(limit), ...(values.status ? { status: values.status } : {}) })
  const page = await api.get(`/v1/tenants/${encodeURIComponent(workspace.workspace_id)}/deliveries?${query}`)
  print(io, values.json === true, page, () =>
    table(
      ['STATUS', 'AT', 'ATTEMPT', 'CODE', 'EVENT', 'WEBHOOK', 'ERROR'],
      (page.data as Json[]).map((d) => [
        d.status,
        d.attempted_at,
        d.attempt_number,
        d.response_code,
        d.event_id,
        d.destination_id,
        d.error_message,
      ]),
    ),
  )
  return EXIT.ok
}

function devicesTable(devices: Json[]): string {
  return table(
    ['DEVICE', 'NAME', 'ONLINE', 'LOCKED', 'DOOR', 'BATTERY', 'LAST SEEN'],
    devices.map((d) => {
      const p = d.properties
      return [
        d.device_id,
        d.display_name,
        yesNo(p.online, 'online', 'offline'),
        yesNo(p.online || p.last_seen_at ? p.locked : null, 'locked', 'unlocked'),
        yesNo(p.door_open, 'open', 'closed'),
        p.battery_level === undefined ? null : `${Math.round(p.battery_level * 100)}%`,
        p.last_seen_at,
      ]
    }),
  )
}

/**
 * Runs a child Node process on one of latchkey's entry points in the build, next to this module (`bin/latchkey.js`
 * runs the CLI from the build too), passing signals through; resolves with its exit code.
 */
function runEntry(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeFlags: readonly string[] = [],
): Promise<number> {
  const script = fileURLToPath(new URL(entry, import.meta.url))
  const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
    stdio: 'inherit',
    env,
  })
  const forward = (signal: NodeJS.Signals) => child.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 1))
    }),
  )
}

export async function run(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE)
    return command === undefined ? EXIT.usage : EXIT.ok
  }
  if (command === 'serve') return runEntry('../main.js', rest, io.env, SERVER_NODE_FLAGS)

  let parsed
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    throw usage((error as Error).message)
  }
  const values = parsed.values as Values
  const args = parsed.positionals
  if (values.help) {
    io.out(USAGE)
    return EXIT.ok
  }
  const settings: CliSettings = loadCliSettings(io.env, values.url)

  if (command === 'simulate') {
    // The simulator reads the URL and the key from its environment; nothing secret goes on its command line.
    const simArgs = rest.filter((a) => a !== '--json')
    const needsApi = simArgs.includes('--count') && !simArgs.includes('--api') && !simArgs.includes('--from')
    return runEntry(
      '../../simulator/cli.js',
      needsApi ? ['--api', settings.url, ...simArgs] : simArgs,
      childEnv(settings),
    )
  }

  const api = new ApiClient(settings.url, settings.apiKey)
  const admin = new ApiClient(settings.url, settings.adminApiKey ?? settings.apiKey)
  const json = values.json === true
  const sub = `${command} ${args[0] ?? ''}`.trim()
  const name = args[1]

  switch (sub) {
    case 'workspaces create': {
      if (!name) throw usage('workspaces create needs a NAME')
      const created = await admin.post('/workspaces/create', { name })
      print(io, json, created, () =>
        [
          `workspace  ${created.workspace.workspace_id}  ${created.workspace.name}`,
          `api_key    ${created.api_key.token}`,
          '',
          'The API key is shown once: keep it (e.g. in ~/.config/latchkey/config.json, mode 0600).',
        ].join('\n'),
      )
      return EXIT.ok
    }
    case 'workspaces list': {
      const { workspaces } = await admin.post('/workspaces/list')
      print(io, json, workspaces, () =>
        table(
          ['WORKSPACE', 'NAME', 'CREATED'],
          (workspaces as Json[]).map((w) => [w.workspace_id, w.name, w.created_at]),
        ),
      )
      return EXIT.ok
    }
    case 'devices create': {
      if (!name) throw usage('devices create needs a NAME')
      const created = await api.post('/devices/create', { name })
      const c = created.mqtt_credentials
      print(io, json, created, () =>
        [
          `device     ${created.device.device_id}  ${created.device.display_name}`,
          '',
          'MQTT credentials (shown once: latchkey keeps only a hash of the password):',
          `  url         ${c.url}`,
          `  client_id   ${c.client_id}`,
          `  username    ${c.username}`,
          `  password    ${c.password}`,
          `  topic_root  ${c.topic_root}`,
        ].join('\n'),
      )
      return EXIT.ok
    }
    case 'devices list': {
      const { devices } = await api.post('/devices/list', { limit: 1000 })
      print(io, json, devices, () => devicesTable(devices))
      return EXIT.ok
    }
    case 'events tail':
      return eventsTail(api, io, values)
    case 'deliveries list':
      return deliveriesList(api, io, values)
  }
  if (command === 'lock' || command === 'unlock') {
    const ref = args[0]
    if (!ref || args.length > 1) throw usage(`${command} needs exactly one DEVICE (an id or a name)`)
    return lockCommand(api, io, values, command, ref)
  }
  throw usage(`unknown command: ${sub}`)
}

/** The process entry point: exit codes from docs/cli.md. */
export async function main(argv = process.argv.slice(2)): Promise<never> {
  let interrupted: Promise<void> | undefined
  const io: Io = {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    interrupted: () =>
      (interrupted ??= new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve())
        process.once('SIGTERM', () => resolve())
      })),
  }
  let code: number
  try {
    code = await run(argv, io)
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`latchkey: ${error.message}`)
      code = error.exitCode
    } else {
      io.err(`latchkey: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
      code = 1
    }
  }
  // Drain stdout before exiting, so piped output is complete.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
  process.exit(code)
}

await main()
