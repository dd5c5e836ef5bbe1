import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { startClusterServices, type ClusterServices } from '../../scripts/cluster-services.js'
import { DYNSEC_PLUGIN, MOSQUITTO, MOSQUITTO_CTRL } from '../../test/helpers/mosquitto.js'
import { PG_BIN } from '../../scripts/pg-test-server.js'
import { atExit } from '../lib/children.js'
import { countOnline, lockProcesses, provision, type LockProcesses } from '../lib/fleet.js'
import { assertLoopback, closedLoop } from '../lib/http.js'
import { startLatchkeyChild, type LatchkeyChild } from '../lib/latchkey-child.js'
import type { LoopResult } from '../lib/loop.js'
import { firstWarmup, type BenchOptions } from '../lib/options.js'
import { pollUntil, round } from '../lib/stats.js'
import { endToEndSync, settledSuccess, type Levels } from './end-to-end.js'
import type { Skipped } from './webhooks.js'

/**
 * The scale-out topology of docs/scale-out.md, end to end: two latchkey instances on one private PostgreSQL 15 and
 * one private mosquitto with dynamic security, the simulated locks connected to mosquitto with their own
 * credentials. lock/unlock `sync: true` as in case 2a, with half the workers on each instance (worker `slot` on
 * instance `slot % 2`, always on its own lock), so about half the attempts are acked to the instance that did not
 * create them and reach their waiting request through LISTEN/NOTIFY. Then instance B stops and A alone takes the
 * same load: one instance of the topology. Beside them, in the same run and at the same levels: case 2a's embedded
 * figures (measured here when case 2a did not run), and one latchkey with its embedded broker on the same
 * PostgreSQL server, which separates the store's cost from the broker's and the second instance's.
 */

export const CLUSTER_LEVELS = [10, 100] as const
/** Each instance's DATABASE_POOL_MAX (its default), set explicitly so that the report states it. */
const POOL_MAX = 10

export interface ClusterResult {
  topology: string
  /** PostgreSQL as the `--store postgres` cases run it. */
  postgres: { synchronous_commit: 'on' | 'off'; pool_max_per_instance: number }
  locks: number
  /** Case 2a at the same levels, from this run: SQLite (or PostgreSQL with `--store postgres`) and aedes inside. */
  embedded: { store: 'sqlite' | 'postgres'; measured: 'case 2a' | 'here'; sync: Levels }
  /**
   * One latchkey with its embedded broker on the cluster's PostgreSQL server (its own database): the store's share
   * of the cost, apart from the broker's and the second instance's. CPU labels: latchkey, postgres, locks, bench.
   */
  embedded_postgres: Levels
  /** Both instances, half the in-flight requests on each. CPU labels: a, b, mosquitto, postgres, locks, bench. */
  two_instances: Levels
  /**
   * Per level, what each instance counted over warm-up and window: device messages it took from the shared
   * subscription, and waiting requests answered because the other instance settled their attempt (by NOTIFY or by
   * the poll).
   */
  two_instances_counters: Record<string, Record<string, InstanceCounters>>
  /** The history of the first failed attempt of each set-up, by level, read through the API after the level. */
  failed_attempt_history?: Record<string, unknown>
  /** Instance A alone on the same PostgreSQL and mosquitto, after B stopped. */
  one_instance: Levels
  /** attempts/s of each set-up over the embedded figure, by level. */
  ratio_to_embedded: Record<
    string,
    { embedded_postgres: number | null; one_instance: number | null; two_instances: number | null }
  >
  latchkey_warnings?: string[]
}

export interface InstanceCounters {
  device_messages: number
  /** Device messages dropped, whatever the reason (e.g. an ack for an attempt this instance cannot find). */
  device_messages_dropped: number
  woken_by_notification: number
  woken_by_poll: number
}

/** Sums of /metrics lines by name prefix (all label sets of a counter, or one given with its labels). */
const COUNTERS: Record<keyof InstanceCounters, string> = {
  device_messages: 'latchkey_mqtt_messages_received_total ',
  device_messages_dropped: 'latchkey_mqtt_messages_dropped_total{',
  woken_by_notification: 'latchkey_attempt_wakes_total{by="notification"} ',
  woken_by_poll: 'latchkey_attempt_wakes_total{by="poll"} ',
}

async function readCounters(lk: LatchkeyChild): Promise<InstanceCounters> {
  const url = new URL('/metrics', lk.httpUrl)
  assertLoopback(url)
  const lines = (await (await fetch(url)).text()).split('\n')
  const sum = (prefix: string) =>
    lines.filter((line) => line.startsWith(prefix)).reduce((total, line) => total + Number(line.split(' ').at(-1)), 0)
  return Object.fromEntries(
    Object.entries(COUNTERS).map(([key, prefix]) => [key, sum(prefix)]),
  ) as unknown as InstanceCounters
}

const minus = (after: InstanceCounters, before: InstanceCounters): InstanceCounters =>
  Object.fromEntries(
    Object.keys(COUNTERS).map((key) => {
      const k = key as keyof InstanceCounters
      return [k, after[k] - before[k]]
    }),
  ) as unknown as InstanceCounters

/** Why the case cannot run here, or undefined when PostgreSQL 15 and mosquitto with dynsec are installed. */
export function clusterMissing(): string | undefined {
  const missing = [join(PG_BIN, 'initdb'), MOSQUITTO, MOSQUITTO_CTRL, DYNSEC_PLUGIN].filter((file) => !existsSync(file))
  return missing.length > 0
    ? `needs Debian's postgresql-15 and mosquitto (missing ${missing.join(', ')}): scripts/ensure-test-deps.sh`
    : undefined
}

/** Every process of a PostgreSQL server: the postmaster (first line of postmaster.pid) and its children. */
function postgresPids(dataDir: string): number[] {
  let postmaster: number
  try {
    postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  } catch {
    return []
  }
  const pids = [postmaster]
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // After the command name (which may hold spaces): state, then ppid.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === postmaster) pids.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return pids
}

/**
 * sync:true lock/unlock at each level; worker `slot` drives lock `slot` through instance `slot % instances`. Each
 * instance's counters are read around each level (`counters`, by level and instance name).
 */
async function syncAcross(
  options: BenchOptions,
  instances: Readonly<Record<string, LatchkeyChild>>,
  deviceIds: readonly string[],
  cpuOf: Record<string, number | (() => number[])>,
  counters?: Record<string, Record<string, InstanceCounters>>,
): Promise<Levels> {
  const levels: Levels = {}
  const named = Object.entries(instances)
  const list = named.map(([, lk]) => lk)
  const first = list[0] as LatchkeyChild
  for (const [index, concurrency] of CLUSTER_LEVELS.entries()) {
    const before = counters ? await Promise.all(list.map(readCounters)) : []
    levels[`c${concurrency}`] = await closedLoop({
      baseUrl: first.httpUrl,
      concurrency,
      durationMs: options.durationMs,
      warmupMs: firstWarmup(options, index),
      headers: { authorization: `Bearer ${first.apiKey}` },
      request: (slot, i) => ({
        baseUrl: (list[slot % list.length] as LatchkeyChild).httpUrl,
        path: i % 2 === 0 ? '/locks/unlock_door' : '/locks/lock_door',
        body: JSON.stringify({ device_id: deviceIds[slot], sync: true }),
      }),
      ok: settledSuccess,
      cpuOf,
    })
    if (counters) {
      const after = await Promise.all(list.map(readCounters))
      counters[`c${concurrency}`] = Object.fromEntries(
        named.map(([name], i) => [name, minus(after[i] as InstanceCounters, before[i] as InstanceCounters)]),
      )
    }
  }
  return levels
}

/**
 * Case 2a at the cluster's levels on a fresh latchkey with its embedded broker: on SQLite (for a run without case
 * 2a), or on `postgres` (a database URL) with that server's processes in the CPU figures.
 */
async function embeddedSync(
  options: BenchOptions,
  postgres?: { databaseUrl: string; pids: () => number[] },
): Promise<Levels> {
  const lk = await startLatchkeyChild({
    ...(postgres ? { env: { DATABASE_URL: postgres.databaseUrl } } : {}),
    ...(options.serverFlags ? { serverFlags: options.serverFlags } : {}),
  })
  try {
    const { credentials } = await provision(lk, options.e2eLocks, 16)
    const locks = await lockProcesses(credentials, lk.mqttUrl, options.e2eLocks)
    try {
      await startLocks(locks, lk, options.e2eLocks)
      return await endToEndSync(
        { ...options, levels: [...CLUSTER_LEVELS] },
        lk,
        credentials.map((c) => c.device_id),
        {
          latchkey: lk.pid,
          locks: locks.children[0]?.pid ?? 0,
          ...(postgres ? { postgres: postgres.pids } : {}),
        },
      )
    } finally {
      await locks.kill()
    }
  } finally {
    await lk.stop()
  }
}

async function startLocks(locks: LockProcesses, lk: LatchkeyChild, count: number): Promise<void> {
  const started = await locks.start()
  if (started.failures > 0) throw new Error(`${started.failures} locks failed to start: ${started.firstFailure}`)
  const online = await pollUntil(async () => ((await countOnline(lk)) === count ? true : undefined), 30_000, 50)
  if (online === undefined) throw new Error('the locks did not all come online')
}

export async function cluster(
  options: BenchOptions,
  embedded: { store: 'sqlite' | 'postgres'; sync?: Levels },
  postgresSettings: { synchronousCommit: boolean },
): Promise<ClusterResult | Skipped> {
  const missing = clusterMissing()
  if (missing) return { skipped: missing }
  const have = embedded.sync
  const embeddedLevels =
    have && CLUSTER_LEVELS.every((level) => have[`c${level}`])
      ? { store: embedded.store, measured: 'case 2a' as const, sync: pick(have) }
      : { store: 'sqlite' as const, measured: 'here' as const, sync: await embeddedSync(options) }

  // As `--store postgres` runs it: fsync on, synchronous_commit off unless asked.
  const services: ClusterServices = await startClusterServices({
    durable: true,
    synchronousCommit: postgresSettings.synchronousCommit,
  })
  const env = { ...services.env, DATABASE_POOL_MAX: String(POOL_MAX) }
  const forget = atExit(() => services.stopNow())
  const instances: LatchkeyChild[] = []
  let locks: LockProcesses | undefined
  try {
    const pgData = join(services.postgres.dir, 'data')
    const postgresCpu = () => postgresPids(pgData)
    const embeddedPostgres = await embeddedSync(options, {
      databaseUrl: await createDatabase(services.postgres.url, 'embedded'),
      pids: postgresCpu,
    })
    const serverFlags = options.serverFlags ? { serverFlags: options.serverFlags } : {}
    const a = await startLatchkeyChild({ env: { ...env, INSTANCE_ID: 'a' }, ...serverFlags })
    instances.push(a)
    // B joins the database A created: same workspace, A's key.
    const b = await startLatchkeyChild({
      env: { ...env, INSTANCE_ID: 'b' },
      ...serverFlags,
      credentials: { apiKey: a.apiKey, workspaceId: a.workspaceId },
    })
    instances.push(b)
    // Devices created through both instances (each pushes its dynsec clients); the locks connect to mosquitto.
    const half = Math.ceil(options.e2eLocks / 2)
    const created = [
      ...(await provision(a, half, 16)).credentials,
      ...(await provision(b, options.e2eLocks - half, 16)).credentials,
    ]
    if (created.some((c) => c.url !== services.mosquitto.url))
      throw new Error(`the API handed out a broker other than ${services.mosquitto.url}: ${created[0]?.url}`)
    locks = await lockProcesses(created, services.mosquitto.url, options.e2eLocks)
    await startLocks(locks, a, options.e2eLocks)
    const ids = created.map((c) => c.device_id)
    const common = {
      mosquitto: services.mosquitto.pid,
      postgres: postgresCpu,
      locks: locks.children[0]?.pid ?? 0,
    }
    const counters: ClusterResult['two_instances_counters'] = {}
    const two = await syncAcross(options, { a, b }, ids, { a: a.pid, b: b.pid, ...common }, counters)
    await b.stop()
    const one = await syncAcross(options, { a }, ids, { a: a.pid, ...common })
    const failed: Record<string, unknown> = {}
    for (const [set, levels] of [
      ['two_instances', two],
      ['one_instance', one],
    ] as const) {
      for (const [key, level] of Object.entries(levels)) {
        const history = await failedHistory(a, level)
        if (history) failed[`${set}.${key}`] = history
      }
    }
    const warnings = instances.flatMap((lk) => lk.problems).slice(0, 20)
    return {
      topology: '2 latchkey instances (external broker, dynsec) · 1 PostgreSQL 15 · 1 mosquitto 2',
      postgres: {
        synchronous_commit: postgresSettings.synchronousCommit ? 'on' : 'off',
        pool_max_per_instance: POOL_MAX,
      },
      locks: options.e2eLocks,
      embedded: embeddedLevels,
      embedded_postgres: embeddedPostgres,
      two_instances: two,
      two_instances_counters: counters,
      one_instance: one,
      ratio_to_embedded: Object.fromEntries(
        CLUSTER_LEVELS.map((level) => {
          const key = `c${level}`
          const base = embeddedLevels.sync[key]?.per_s
          const over = (l: LoopResult | undefined) => (base && l ? round(l.per_s / base, 3) : null)
          return [
            key,
            {
              embedded_postgres: over(embeddedPostgres[key]),
              one_instance: over(one[key]),
              two_instances: over(two[key]),
            },
          ]
        }),
      ),
      ...(Object.keys(failed).length > 0 ? { failed_attempt_history: failed } : {}),
      ...(warnings.length > 0 ? { latchkey_warnings: warnings } : {}),
    }
  } finally {
    await locks?.kill()
    for (const lk of instances) await lk.stop()
    await services.stop()
    forget()
  }
}

function pick(levels: Levels): Levels {
  return Object.fromEntries(CLUSTER_LEVELS.map((level) => [`c${level}`, levels[`c${level}`] as LoopResult]))
}

/** Creates a database on the server of `adminUrl` (a superuser's) and returns its URL. */
async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** The stored history of a level's first failed attempt (its id leads the error text), to tell why it failed. */
async function failedHistory(lk: LatchkeyChild, level: LoopResult): Promise<unknown> {
  const id = /"action_attempt_id":"([^"]+)"/.exec(level.first_error ?? '')?.[1]
  if (!id) return undefined
  const url = new URL('/action_attempts/history', lk.httpUrl)
  assertLoopback(url)
  try {
    const reply = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${lk.apiKey}` },
      body: JSON.stringify({ action_attempt_id: id }),
    })
    return { action_attempt_id: id, ...((await reply.json()) as object) }
  } catch (error) {
    return { action_attempt_id: id, unreadable: String(error) }
  }
}
