import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { BehaviourSchema, seededRandom, type Behaviour, type Latency } from './behaviour.js'
import { Fleet } from './fleet.js'

/** `npm run simulate -- …`: provision (or load) a fleet of virtual locks, run it, print a live status line. */

export const USAGE = `Usage: npm run simulate -- [source] [knobs]

Source (one of):
  --api URL --key KEY --count N   create N devices through the Connect API
      [--name-prefix sim-lock]    device names: <prefix>-1, <prefix>-2, …
      [--save FILE]               write their credentials to FILE (JSON, mode 0600)
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

export function parseCliArgs(argv: readonly string[]): CliParse {
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
      source: parseSource(str, read),
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

function parseSource(str: (flag: string) => string | undefined, read: Reader): CliSource {
  const path = str('from')
  const api = str('api')
  if (path !== undefined && api !== undefined) throw new UsageError('use either --from or --api, not both')
  if (path !== undefined) return { kind: 'file', path }
  const apiKey = str('key')
  const count = read('count', posInt('count'))
  if (api === undefined || apiKey === undefined || count === undefined) {
    throw new UsageError('give --api, --key and --count to create devices, or --from FILE')
  }
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

async function buildFleet(config: CliConfig): Promise<Fleet> {
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
  const fleet = await Fleet.provision({ ...common, ...source })
  if (source.save) {
    await fleet.saveCredentials(source.save)
    console.log(`saved ${fleet.credentials.length} device credentials to ${source.save}`)
  }
  return fleet
}

/** Rewrites one line in place on a TTY; elsewhere (logs, pipes) prints a line every 5 s. */
function startStatusLine(fleet: Fleet): () => void {
  const tty = process.stdout.isTTY === true
  let ticks = 0
  const timer = setInterval(() => {
    ticks += 1
    if (tty) process.stdout.write(`\r${fleet.statusLine()}\x1b[K`)
    else if (ticks % 5 === 0) console.log(fleet.statusLine())
  }, 1_000)
  return () => {
    clearInterval(timer)
    if (tty) process.stdout.write('\n')
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed: CliParse
  try {
    parsed = parseCliArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`${err.message}\n\n${USAGE}`)
    return 2
  }
  if (parsed.help) {
    console.log(USAGE)
    return 0
  }
  const fleet = await buildFleet(parsed.config)
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
