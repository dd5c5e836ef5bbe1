import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { BehaviourSchema, seededRandom, type Behaviour, type Latency } from './behaviour.js'
import { Fleet, provisionSaved } from './fleet.js'

/** `npm run simulate -- …`: provision (or load) a fleet of virtual locks, run it, print a live status line. */

export const USAGE = `Usage: npm run simulate -- [source] [knobs]

Source (one of):
  --api URL --count N             create N devices through the Connect API, with the API key in
                                  LATCHKEY_API_KEY (--api defaults to LATCHKEY_URL)
      [--name-prefix sim-lock]    device names: <prefix>-1, <prefix>-2, …
      [--save FILE]               keep their credentials in FILE (JSON, mode 0600); a re-run with the
                                  same FILE reuses the locks saved there and creates only the missing ones
      [--key KEY]                 the API key on the command line instead (visible in ps: avoid)
  --from FILE                     read credentials written by --save

Connection:
  --mqtt-url URL                  override the broker URL of every device (e.g. mqtt://127.0.0.1:1883)
  --ca FILE                       PEM CA certificate to trust for an mqtts:// broker
  --concurrency N                 locks connecting at once (default 200)
  --reconnect-ms N                reconnect period after a dropped connection (default 1000)

Behaviour (probabilities are 0..1 per command):
  --latency MS | MIN-MAX          ack latency, fixed or uniform in a range (default 0)
  --accepted                      send an 'accepted' ack before the final one
  --jam P  --door-open P  --low-battery P  --busy P  --unsupported P
  --silent P                      never ack
  --duplicate P                   send the final ack twice
  --late P                        ack success only after expires_at
  --flap-every MS [--flap-down MS]  drop the connection every MS for flap-down MS (default 2000)
  --manual-per-minute R           manual lock/unlock events per lock per minute
  --battery-drain F               battery used per bolt movement
  --seed N                        repeatable random draws

  --help                          this text
`

const OPTIONS = {
  api: { type: 'string' },
  key: { type: 'string' },
  count: { type: 'string' },
  'name-prefix': { type: 'string' },
  save: { type: 'string' },
  from: { type: 'string' },
  'mqtt-url': { type: 'string' },
  ca: { type: 'string' },
  concurrency: { type: 'string' },
  'reconnect-ms': { type: 'string' },
  latency: { type: 'string' },
  accepted: { type: 'boolean' },
  jam: { type: 'string' },
  'door-open': { type: 'string' },
  'low-battery': { type: 'string' },
  busy: { type: 'string' },
  unsupported: { type: 'string' },
  silent: { type: 'string' },
  duplicate: { type: 'string' },
  late: { type: 'string' },
  'flap-every': { type: 'string' },
  'flap-down': { type: 'string' },
  'manual-per-minute': { type: 'string' },
  'battery-drain': { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export type CliSource =
  | { kind: 'api'; apiUrl: string; apiKey: string; count: number; namePrefix: string; save?: string }
  | { kind: 'file'; path: string }

export interface CliConfig {
  source: CliSource
  behaviour: Behaviour
  mqttUrl?: string
  /** Path of a PEM CA certificate for mqtts:// brokers. */
  ca?: string
  concurrency: number
  reconnectPeriodMs: number
  seed?: number
}

export type CliParse = { help: true } | { help: false; config: CliConfig }

/** Thrown for bad command lines; main() prints it with the usage and exits 2. */
export class UsageError extends Error {}

const num = (flag: string) => z.coerce.number({ error: `--${flag} must be a number` })
const posInt = (flag: string) => num(flag).int(`--${flag} must be an integer`).positive(`--${flag} must be > 0`)

/** The environment the CLI reads: the API key, so that no secret is needed on the command line. */
export interface CliEnv {
  LATCHKEY_API_KEY?: string | undefined
  LATCHKEY_URL?: string | undefined
}

export function parseCliArgs(argv: readonly string[], env: CliEnv = {}): CliParse {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  if (values.help) return { help: true }
  const str = (flag: string): string | undefined => values[flag] as string | undefined
  const read = <T>(flag: string, schema: z.ZodType<T>): T | undefined => {
    const raw = str(flag)
    if (raw === undefined) return undefined
    const parsed = schema.safeParse(raw)
    if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? `--${flag}: invalid value`)
    return parsed.data
  }
  const behaviour = BehaviourSchema.safeParse(behaviourInput(values, read))
  if (!behaviour.success) throw new UsageError(behaviour.error.issues.map(describeIssue).join('\n'))
  return {
    help: false,
    config: {
      source: parseSource(str, read, env),
      behaviour: behaviour.data,
      mqttUrl: str('mqtt-url'),
      ca: str('ca'),
      concurrency: read('concurrency', posInt('concurrency')) ?? 200,
      reconnectPeriodMs: read('reconnect-ms', num('reconnect-ms').int().min(0)) ?? 1_000,
      seed: read('seed', num('seed').int()),
    },
  }
}

type Reader = <T>(flag: string, schema: z.ZodType<T>) => T | undefined

function parseSource(str: (flag: string) => string | undefined, read: Reader, env: CliEnv): CliSource {
  const path = str('from')
  if (path !== undefined && str('api') !== undefined) throw new UsageError('use either --from or --api, not both')
  if (path !== undefined) return { kind: 'file', path }
  const api = str('api') ?? (env.LATCHKEY_URL || undefined)
  const apiKey = str('key') ?? (env.LATCHKEY_API_KEY || undefined)
  const count = read('count', posInt('count'))
  if (api === undefined || count === undefined) {
    throw new UsageError('give --api URL (or LATCHKEY_URL) and --count N to create devices, or --from FILE')
  }
  if (apiKey === undefined) throw new UsageError('set LATCHKEY_API_KEY to the workspace API key (or give --key)')
  return { kind: 'api', apiUrl: api, apiKey, count, namePrefix: str('name-prefix') ?? 'sim-lock', save: str('save') }
}

/** Numbers stay raw (`num`) here so that range errors come from the one behaviour schema. */
function behaviourInput(values: Record<string, string | boolean | undefined>, read: Reader): Record<string, unknown> {
  const n = (flag: string): number | undefined => read(flag, num(flag))
  const flapEvery = n('flap-every')
  const flapDown = n('flap-down')
  if (flapDown !== undefined && flapEvery === undefined) throw new UsageError('--flap-down needs --flap-every')
  return {
    ackLatencyMs: read('latency', LatencyArg),
    sendAccepted: values.accepted === true ? true : undefined,
    jam: n('jam'),
    doorOpen: n('door-open'),
    lowBattery: n('low-battery'),
    busy: n('busy'),
    unsupported: n('unsupported'),
    silent: n('silent'),
    duplicateAck: n('duplicate'),
    lateAck: n('late'),
    flap: flapEvery === undefined ? undefined : { everyMs: flapEvery, downMs: flapDown ?? 2_000 },
    manualEventsPerMinute: n('manual-per-minute'),
    batteryDrainPerCommand: n('battery-drain'),
  }
}

/** Behaviour field → the flag that sets it, so errors name what the user typed. */
const FLAG_OF: Record<string, string> = {
  ackLatencyMs: 'latency',
  sendAccepted: 'accepted',
  doorOpen: 'door-open',
  lowBattery: 'low-battery',
  duplicateAck: 'duplicate',
  lateAck: 'late',
  manualEventsPerMinute: 'manual-per-minute',
  batteryDrainPerCommand: 'battery-drain',
  everyMs: 'flap-every',
  downMs: 'flap-down',
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.filter((part): part is string => typeof part === 'string').at(-1)
  return field === undefined ? issue.message : `--${FLAG_OF[field] ?? field}: ${issue.message}`
}

/** `20` or `10-50`. */
const LatencyArg: z.ZodType<Latency> = z.string().transform((raw, ctx): Latency => {
  const match = /^(\d+)(?:-(\d+))?$/.exec(raw.trim())
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `--latency must be MS or MIN-MAX, got '${raw}'` })
    return z.NEVER
  }
  return match[2] === undefined ? Number(match[1]) : [Number(match[1]), Number(match[2])]
})

async function buildFleet(config: CliConfig, out: (line: string) => void): Promise<Fleet> {
  const common = {
    behaviour: config.behaviour,
    mqttUrl: config.mqttUrl,
    ca: config.ca === undefined ? undefined : readFileSync(config.ca),
    connectConcurrency: config.concurrency,
    reconnectPeriodMs: config.reconnectPeriodMs,
    random: config.seed === undefined ? undefined : seededRandom(config.seed),
  }
  const { source } = config
  if (source.kind === 'file') return Fleet.fromFile(source.path, common)
  if (!source.save) return Fleet.provision({ ...common, ...source })
  const { credentials, reused, created } = await provisionSaved({
    ...source,
    save: source.save,
    mqttUrl: config.mqttUrl,
  })
  if (reused > 0) out(`reusing ${reused} locks saved in ${source.save}`)
  if (created > 0) out(`created ${created} locks; their credentials are saved in ${source.save} (mode 0600)`)
  return new Fleet({ ...common, credentials })
}

/** The device ids, so that they can be used with the API right away; a long list is cut short. */
export function describeDevices(fleet: Pick<Fleet, 'credentials'>, limit = 20): string[] {
  const ids = fleet.credentials.map((c) => c.device_id)
  const lines = [`devices (${ids.length}):`, ...ids.slice(0, limit).map((id) => `  ${id}`)]
  if (ids.length > limit) lines.push(`  … and ${ids.length - limit} more`)
  return lines
}

export interface StatusOutput {
  isTTY?: boolean | undefined
  write(text: string): unknown
}

/** On a terminal, rewrites one line in place every second; elsewhere (logs, pipes) prints a line every 5 s. */
export function startStatusLine(fleet: Pick<Fleet, 'statusLine'>, out: StatusOutput = process.stdout): () => void {
  const tty = out.isTTY === true
  const timer = setInterval(
    () => out.write(tty ? `\r${fleet.statusLine()}\x1b[K` : `${fleet.statusLine()}\n`),
    tty ? 1_000 : 5_000,
  )
  return () => {
    clearInterval(timer)
    if (tty) out.write('\n')
  }
}

export async function main(argv: readonly string[], env: CliEnv = process.env): Promise<number> {
  let parsed: CliParse
  try {
    parsed = parseCliArgs(argv, env)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`${err.message}\n\n${USAGE}`)
    return 2
  }
  if (parsed.help) {
    console.log(USAGE)
    return 0
  }
  const fleet = await buildFleet(parsed.config, (line) => console.log(line))
  for (const line of describeDevices(fleet)) console.log(line)
  // Listen before connecting: a signal during a long start still ends in a clean stop.
  const signal = waitForSignal()
  const failures = await fleet.start()
  for (const failure of failures) console.error(failure.error.message)
  if (failures.length === fleet.locks.length && failures.length > 0) {
    await fleet.stop()
    return 1
  }
  console.log(fleet.statusLine())
  const stopStatus = startStatusLine(fleet)
  await signal
  stopStatus()
  await fleet.stop()
  console.log(fleet.statusLine())
  return 0
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      // A second signal while stopping falls through to Node's default: exit at once.
      resolve(signal)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

function isEntryPoint(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err)
      process.exit(1)
    },
  )
}
