import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cluster } from './cases/cluster.js'
import { endToEndSync } from './cases/end-to-end.js'
import { peer } from './cases/peer.js'
import { rawHttp } from './cases/raw-http.js'
import { rawMqtt } from './cases/raw-mqtt.js'
import { connectionScale } from './cases/scale.js'
import { createToWebhook, fanout, webhooksAvailable, WEBHOOKS_MISSING } from './cases/webhooks.js'
import { atExit, fdLimit, installExitHandlers, killAllNow, ROOT } from './lib/children.js'
import { countOnline, lockProcesses, provision } from './lib/fleet.js'
import { startLatchkeyChild } from './lib/latchkey-child.js'
import { benchOptions, type BenchOptions } from './lib/options.js'
import { newestProfile, summarizeProfile } from './lib/profile.js'
import { concurrentCeiling, serialCeiling, table, targets, type Results } from './lib/report.js'
import { pollUntil, round } from './lib/stats.js'
import { startTestPostgres } from '../scripts/pg-test-server.js'

/**
 * `npm run bench [-- --quick] [-- --out DIR] [-- --scale-locks N] [-- --cpu-prof] [-- --only raw,e2e,peer,webhooks,scale,cluster]
 *   [-- --store sqlite|postgres|both]`
 * With `--store postgres` (or `both`, SQLite first) cases 2, 4 and 5 also run on a private PostgreSQL 15 started for
 * the run (fsync on; synchronous_commit off, the SQLite store's durability, unless `--pg-synchronous-commit on`) and
 * stopped at its end.
 * `--webhook-pipelining N` runs the main latchkey with WEBHOOK_PIPELINING=N (docs/webhooks.md#pipelining).
 * `--server-node-flags=…` runs every latchkey with these node flags (space-separated) instead of the server's own
 * (src/compose/node-flags.ts); `--server-node-flags=` for none. The `=` form lets the value start with `--`.
 * `cluster` (case 6) runs end to end through two instances on a private PostgreSQL and mosquitto (docs/scale-out.md),
 * beside case 2a at the same levels.
 * Everything on loopback, in separate processes: this one generates load, latchkey runs as `npm start` does, the
 * simulated locks run in lock processes, helper servers (fastify hello, webhook receiver, Seam's fake) in theirs.
 */

const USAGE =
  'usage: npm run bench -- [--quick] [--out DIR] [--scale-locks N] [--cpu-prof] [--only raw,e2e,peer,webhooks,scale,cluster] [--store sqlite|postgres|both] [--webhook-pipelining N] [--server-node-flags FLAGS]'
const CASES = ['raw', 'e2e', 'peer', 'webhooks', 'scale', 'cluster'] as const

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'scale-locks': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    only: { type: 'string' },
    store: { type: 'string', default: 'sqlite' },
    'pg-synchronous-commit': { type: 'string', default: 'off' },
    'webhook-pipelining': { type: 'string' },
    'server-node-flags': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const outDir = resolve(values.out ?? join(ROOT, 'bench', 'results'))
const only = new Set(values.only ? values.only.split(',') : CASES)
if (!['sqlite', 'postgres', 'both'].includes(values.store ?? '')) {
  console.error(USAGE)
  process.exit(2)
}
const pgSyncCommit = values['pg-synchronous-commit'] === 'on'
const stores: Array<'sqlite' | 'postgres'> =
  values.store === 'both' ? ['sqlite', 'postgres'] : [values.store as 'sqlite' | 'postgres']
const options = benchOptions(values.quick ?? false, {
  ...(values['scale-locks'] ? { scaleLocks: Number(values['scale-locks']) } : {}),
  ...(values['cpu-prof'] ? { cpuProfDir: join(outDir, 'profiles') } : {}),
  ...(values['server-node-flags'] !== undefined
    ? { serverFlags: values['server-node-flags'].split(' ').filter((flag) => flag !== '') }
    : {}),
})

const log = (message: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)

async function step<T>(results: Results, name: string, run: () => Promise<T>): Promise<T | undefined> {
  log(`${name} …`)
  try {
    return await run()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    log(`${name} FAILED: ${message}`)
    results.errors = { ...results.errors, [name]: message }
    return undefined
  }
}

/** Cases 2, 4 and 5 share one latchkey and one lock process of `e2eLocks` instantly acking locks. */
async function withMainLatchkey(results: Results, opts: BenchOptions, env: Record<string, string> = {}): Promise<void> {
  const lk = await startLatchkeyChild({
    env: {
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      ...(values['webhook-pipelining'] ? { WEBHOOK_PIPELINING: values['webhook-pipelining'] } : {}),
      ...env,
    },
    ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
    ...(opts.serverFlags ? { serverFlags: opts.serverFlags } : {}),
  })
  try {
    const { credentials } = await provision(lk, opts.e2eLocks, 16)
    const locks = await lockProcesses(credentials, lk.mqttUrl, opts.e2eLocks)
    try {
      const started = await locks.start()
      if (started.failures > 0) throw new Error(`${started.failures} locks failed to start: ${started.firstFailure}`)
      if (
        (await pollUntil(async () => ((await countOnline(lk)) === opts.e2eLocks ? true : undefined), 30_000, 50)) ===
        undefined
      ) {
        throw new Error('the locks did not all come online')
      }
      const ids = credentials.map((c) => c.device_id)
      const cpuOf = { latchkey: lk.pid, locks: locks.children[0]?.pid ?? 0 }
      const webhooks = await webhooksAvailable(lk)
      if (only.has('e2e')) {
        const sync = await step(results, 'end-to-end sync:true', () => endToEndSync(opts, lk, ids, cpuOf))
        const ceiling = results.raw?.serial_ceiling.attempts_per_s
        const c1 = sync?.c1?.per_s
        const createToWebhookResult = webhooks
          ? await step(results, 'end-to-end create → webhook', () => createToWebhook(opts, lk, ids, cpuOf))
          : { skipped: WEBHOOKS_MISSING }
        const webhookC1 =
          createToWebhookResult && !('skipped' in createToWebhookResult) ? createToWebhookResult.c1?.per_s : undefined
        if (sync) {
          results.end_to_end = {
            sync,
            ratio_to_serial_ceiling: ceiling && c1 ? round(c1 / ceiling, 3) : null,
            create_to_webhook: createToWebhookResult ?? { skipped: 'failed (see errors)' },
            ...(webhookC1 !== undefined
              ? { create_to_webhook_ratio_to_serial_ceiling: ceiling ? round(webhookC1 / ceiling, 3) : null }
              : {}),
          }
        }
      }
      if (only.has('peer'))
        results.peer = await step(results, 'peer: latchkey vs Seam fake', () => peer(opts, lk, ids, cpuOf))
      if (only.has('webhooks')) {
        results.fanout = webhooks
          ? await step(results, 'webhook fan-out', () => fanout(opts, lk, ids))
          : { skipped: WEBHOOKS_MISSING }
      }
      if (lk.problems.length > 0) results.latchkey_warnings = lk.problems.slice(0, 20)
    } finally {
      await locks.kill()
    }
  } finally {
    await lk.stop()
  }
}

/** SQLite and PostgreSQL side by side, from one run of `--store both`. */
function storeComparison(results: Results): string {
  const pg = results.postgres as Pick<Results, 'end_to_end' | 'fanout'>
  const lines = ['| case | SQLite | PostgreSQL | PostgreSQL / SQLite |', '|---|---|---|---|']
  const row = (name: string, a: number | undefined, b: number | undefined, unit: string) =>
    lines.push(
      `| ${name} | ${a ?? '–'} ${unit} | ${b ?? '–'} ${unit} | ${a && b ? `${Math.round((b / a) * 100)} %` : '–'} |`,
    )
  for (const level of options.levels) {
    const key = `c${level}`
    row(
      `2a sync:true, ${level} in flight`,
      results.end_to_end?.sync?.[key]?.per_s,
      pg.end_to_end?.sync?.[key]?.per_s,
      'attempts/s',
    )
  }
  const fan = (r: Pick<Results, 'fanout'>) =>
    r.fanout && 'deliveries_per_s' in r.fanout ? (r.fanout.deliveries_per_s as number) : undefined
  row('4 webhook fan-out', fan(results), fan(pg), 'deliveries/s')
  return lines.join('\n')
}

async function main(): Promise<number> {
  installExitHandlers()
  const watchdog = setTimeout(
    () => {
      console.error('bench: watchdog fired, the run took too long; stopping every child')
      killAllNow()
      process.exit(3)
    },
    options.quick ? 150_000 : 60 * 60_000,
  )
  watchdog.unref()
  const t0 = performance.now()
  const results: Results = {
    schema: 1,
    mode: options.quick ? 'quick' : 'full',
    command: `npm run bench --${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    started_at: new Date().toISOString(),
    machine: {
      nproc: cpus().length,
      cpu: cpus()[0]?.model ?? '?',
      mem_gib: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      open_files_limit: fdLimit(),
    },
  }
  mkdirSync(outDir, { recursive: true })

  if (only.has('raw')) {
    const mqtt = await step(results, 'raw: mqtt.js ↔ aedes', () => rawMqtt(options))
    const http = await step(results, 'raw: fastify hello + signed webhook', () => rawHttp(options))
    if (mqtt && http)
      results.raw = {
        mqtt,
        http,
        serial_ceiling: serialCeiling(mqtt, http),
        concurrent_ceiling: concurrentCeiling(mqtt, http),
      }
  }
  if (['e2e', 'peer', 'webhooks'].some((c) => only.has(c))) {
    for (const store of stores) {
      if (store === 'sqlite') {
        await step(results, 'main latchkey', () => withMainLatchkey(results, options))
        continue
      }
      // PostgreSQL: the same cases against a private server; in a run of both, under results.postgres.
      const target: Results = stores.length > 1 ? ({} as Results) : results
      const server = await step(results, 'private PostgreSQL 15', () =>
        startTestPostgres({ durable: true, synchronousCommit: pgSyncCommit }),
      )
      if (!server) continue
      const forget = atExit(() => server.stop())
      try {
        await step(target, 'main latchkey on PostgreSQL', () =>
          withMainLatchkey(target, options, { DATABASE_URL: server.url }),
        )
      } finally {
        server.stop()
        forget()
      }
      if (target !== results) {
        results.postgres = {
          synchronous_commit: pgSyncCommit ? 'on' : 'off',
          end_to_end: target.end_to_end,
          fanout: target.fanout,
          peer: target.peer,
          ...(target.errors ? { errors: target.errors } : {}),
        }
        if (target.errors) results.errors = { ...results.errors, ...target.errors }
      }
    }
  }
  if (only.has('cluster'))
    results.cluster = await step(results, 'two instances on PostgreSQL and mosquitto', () =>
      cluster(
        options,
        { store: stores[0] ?? 'sqlite', ...(results.end_to_end ? { sync: results.end_to_end.sync } : {}) },
        { synchronousCommit: pgSyncCommit },
      ),
    )
  if (only.has('scale'))
    results.scale = await step(results, `connection scale (${options.scaleLocks} locks)`, () =>
      connectionScale(options),
    )

  if (options.cpuProfDir) {
    // The main latchkey (cases 2, 4, 5) and the connection-scale one write a profile each when they exit.
    for (const [key, dir] of [
      ['profile', options.cpuProfDir],
      ['scale_profile', join(options.cpuProfDir, 'scale')],
    ] as const) {
      const file = existsSync(dir) ? newestProfile(dir) : undefined
      if (file) results[key] = summarizeProfile(file)
    }
  }
  results.targets = targets(results)
  results.finished_at = new Date().toISOString()
  results.duration_s = round((performance.now() - t0) / 1000, 1)

  const json = `${JSON.stringify(results, null, 2)}\n`
  const latest = join(outDir, 'latest.json')
  const copy = join(outDir, `bench-${results.mode}-${results.started_at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(latest, json)
  writeFileSync(copy, json)
  console.log(`\n${table(results)}\n`)
  if (results.postgres) console.log(`${storeComparison(results)}\n`)
  for (const key of ['profile', 'scale_profile']) {
    const profile = results[key] as ReturnType<typeof summarizeProfile> | undefined
    if (!profile) continue
    console.log(
      `latchkey CPU profile ${profile.file} (busy ${profile.busy_ms} ms, idle ${profile.idle_ms} ms), top self time:`,
    )
    for (const f of profile.top.slice(0, 15))
      console.log(`  ${String(f.self_pct).padStart(5)} %  ${f.function}  ${f.where}`)
  }
  console.log(`results: ${latest}\ncopy:    ${copy}\n(${results.mode} run, ${results.duration_s} s)`)
  clearTimeout(watchdog)
  return results.errors ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error)
    killAllNow()
    process.exit(1)
  },
)
