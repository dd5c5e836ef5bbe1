/**
 * Latency of the delivery-attempt listings on a large log, through the real HTTP API (docs/performance.md, "Listing
 * delivery attempts with 1,000,000 rows"). Standalone, after bench/seed-attempts.ts:
 *
 *   npx tsx bench/list-attempts.ts [--dir ./data-bench-attempts] [--requests 500] [--plans] [--store postgres]
 *
 * With `--store postgres` the seeded SQLite database is first copied (npm run db:copy) into a private PostgreSQL 15
 * started for the run (fsync on, synchronous_commit off), and latchkey runs on that; the server is stopped at the end.
 *
 * Starts latchkey in this process on the seeded DATA_DIR (ports 0, loopback only), then for each case sends
 * `--requests` first-page requests one at a time, each with freshly drawn parameters (a random tenant weighted as
 * seeded, destination, topic, status, one-day window or event), after a discarded warm-up. Prints one table.
 */
import { readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadConfig } from '../src/config.js'
import { EVENT_TYPES } from '../src/domain/events.js'
import { startLatchkey } from '../src/latchkey.js'
import { SqliteDeliveryLog } from '../src/store/sqlite/delivery-log.js'
import { openDatabase } from '../src/store/sqlite/database.js'
import { copySqliteToPostgres } from '../scripts/db-copy.js'
import { startTestPostgres } from '../scripts/pg-test-server.js'
import { databasePath } from '../src/store/sqlite/index.js'
import { type SeedManifest, type SeededTenant } from './seed-attempts.js'
import { seededRandom } from '../simulator/behaviour.js'

const ADMIN_KEY = 'seam_admin_bench_list_attempts_0123456789'

interface Request {
  path: string
  key: string
}

interface Case {
  name: string
  /** Draws the next request; `draw` is the run's seeded PRNG. */
  next: (draw: () => number) => Request | Promise<Request>
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0
}

function pick<T>(items: readonly T[], draw: () => number): T {
  return items[Math.floor(draw() * items.length)] as T
}

/** Tenants drawn as often as they have attempts: most requests hit the big ones, as most traffic would. */
function tenantOf(manifest: SeedManifest, draw: () => number): SeededTenant {
  let r = draw() * manifest.attempts
  return manifest.tenants.find((t) => (r -= t.attempts) < 0) ?? (manifest.tenants[0] as SeededTenant)
}

function cases(manifest: SeedManifest, baseUrl: string): Case[] {
  const admin = (path: string): Request => ({ path, key: ADMIN_KEY })
  const biggest = (manifest.tenants[0] as SeededTenant).workspace_id
  let deep: Request | undefined
  // Walks to the 49th page once, untimed; every timed request then asks for the 50th.
  const deepPage = async (): Promise<Request> => {
    if (deep) return deep
    let path = `/api/v1/attempts?tenant_id=${biggest}`
    for (let page = 1; page < 50; page++) {
      const res = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
      const body = (await res.json()) as { pagination: { next: string } }
      path = `/api/v1/attempts?tenant_id=${biggest}&next=${body.pagination.next}`
    }
    return (deep = admin(path))
  }
  const from = Date.parse(manifest.from)
  const span = Date.parse(manifest.to) - from - 86_400_000
  return [
    { name: 'tenant', next: (d) => admin(`/api/v1/attempts?tenant_id=${tenantOf(manifest, d).workspace_id}`) },
    {
      name: 'tenant + destination',
      next: (d) => {
        const t = tenantOf(manifest, d)
        return admin(`/api/v1/attempts?tenant_id=${t.workspace_id}&destination_id=${pick(t.webhooks, d)}`)
      },
    },
    {
      name: 'tenant + topic',
      next: (d) =>
        admin(`/api/v1/attempts?tenant_id=${tenantOf(manifest, d).workspace_id}&topic=${pick(EVENT_TYPES, d)}`),
    },
    {
      name: 'tenant + status',
      next: (d) =>
        admin(
          `/api/v1/attempts?tenant_id=${tenantOf(manifest, d).workspace_id}&status=${pick(['success', 'failed'], d)}`,
        ),
    },
    {
      name: 'tenant + time range (1 day)',
      next: (d) => {
        const start = from + Math.floor(d() * span)
        const range = `time[gte]=${new Date(start).toISOString()}&time[lt]=${new Date(start + 86_400_000).toISOString()}`
        return admin(`/api/v1/attempts?tenant_id=${tenantOf(manifest, d).workspace_id}&${range}`)
      },
    },
    { name: 'event_id', next: (d) => admin(`/api/v1/attempts?event_id=${pick(manifest.sample_events, d)}`) },
    { name: 'all tenants (admin)', next: () => admin('/api/v1/attempts') },
    // Filters served by a narrower index and a per-row check (docs/deliveries.md): how much slower they are.
    { name: 'topic, all tenants (admin)', next: (d) => admin(`/api/v1/attempts?topic=${pick(EVENT_TYPES, d)}`) },
    {
      name: 'tenant + destination + topic',
      next: (d) => {
        const t = tenantOf(manifest, d)
        return admin(
          `/api/v1/attempts?tenant_id=${t.workspace_id}&destination_id=${pick(t.webhooks, d)}&topic=${pick(EVENT_TYPES, d)}`,
        )
      },
    },
    { name: 'largest tenant, 50th page (next cursor)', next: () => deepPage() },
    { name: 'v1: tenant', next: (d) => v1(tenantOf(manifest, d), '') },
    { name: 'v1: tenant + status=failed', next: (d) => v1(tenantOf(manifest, d), '?status=failed') },
    { name: 'v1: tenant + status=pending', next: (d) => v1(tenantOf(manifest, d), '?status=pending') },
  ]
}

function v1(tenant: SeededTenant, query: string): Request {
  return { path: `/v1/tenants/${tenant.workspace_id}/deliveries${query}`, key: tenant.api_key }
}

async function timed(baseUrl: string, request: Request): Promise<{ ms: number; rows: number }> {
  const started = performance.now()
  const res = await fetch(`${baseUrl}${request.path}`, { headers: { authorization: `Bearer ${request.key}` } })
  const body = (await res.json()) as { models?: unknown[]; data?: unknown[] }
  const ms = performance.now() - started
  if (res.status !== 200) throw new Error(`${request.path}: ${res.status} ${JSON.stringify(body)}`)
  return { ms, rows: (body.models ?? body.data ?? []).length }
}

async function measure(baseUrl: string, c: Case, requests: number, draw: () => number) {
  const warmup = Math.max(20, Math.floor(requests / 10))
  const samples: number[] = []
  let rows = 0
  for (let i = 0; i < warmup + requests; i++) {
    const result = await timed(baseUrl, await c.next(draw))
    if (i < warmup) continue
    samples.push(result.ms)
    rows += result.rows
  }
  samples.sort((a, b) => a - b)
  const fmt = (v: number) => v.toFixed(2)
  return `| ${c.name} | ${samples.length} | ${(rows / samples.length).toFixed(0)} | ${fmt(percentile(samples, 50))} | ${fmt(percentile(samples, 99))} | ${fmt(samples[samples.length - 1] ?? 0)} |`
}

/** A merge of many ranges prints one line per range: count identical steps instead. */
function summarisePlan(lines: string[]): string[] {
  const merges = lines.filter((line) => line === 'MERGE (UNION ALL)').length
  const counts = new Map<string, number>()
  for (const line of lines)
    if (!['MERGE (UNION ALL)', 'LEFT', 'RIGHT'].includes(line)) counts.set(line, (counts.get(line) ?? 0) + 1)
  const steps = [...counts].map(([line, n]) => (n > 1 ? `${n} × ${line}` : line))
  return merges > 0 ? [`MERGE (UNION ALL) of ${merges + 1} ranges:`, ...steps.map((step) => `  ${step}`)] : steps
}

function printPlans(dir: string, manifest: SeedManifest): void {
  const db = openDatabase(databasePath(dir))
  const log = new SqliteDeliveryLog(db)
  const tenant = manifest.tenants[0] as SeededTenant
  const plans: Array<[string, Parameters<SqliteDeliveryLog['explain']>[0]]> = [
    ['tenant', { tenantIds: [tenant.workspace_id], dir: 'desc', limit: 101 }],
    [
      'tenant + destination',
      { tenantIds: [tenant.workspace_id], destinationIds: [tenant.webhooks[1] as string], dir: 'desc', limit: 101 },
    ],
    ['tenant + topic', { tenantIds: [tenant.workspace_id], topics: ['lock.locked'], dir: 'desc', limit: 101 }],
    [
      'tenant + destination + topic',
      {
        tenantIds: [tenant.workspace_id],
        destinationIds: [tenant.webhooks[0] as string],
        topics: ['lock.locked'],
        dir: 'desc',
        limit: 101,
      },
    ],
    ['topic, all tenants', { topics: ['device.added'], dir: 'desc', limit: 101 }],
    ['all tenants', { dir: 'desc', limit: 101 }],
    [
      'tenant + status=failed',
      { tenantIds: [tenant.workspace_id], outcomes: ['retrying', 'failed'], dir: 'desc', limit: 101 },
    ],
    [
      'tenant + time range',
      { tenantIds: [tenant.workspace_id], time: { gte: manifest.from, lt: manifest.to }, dir: 'desc', limit: 101 },
    ],
    ['event_id', { eventIds: [manifest.sample_events[0] as string], dir: 'desc', limit: 101 }],
    ['v1 tenant', { tenantId: tenant.workspace_id, limit: 21 }],
    ['v1 tenant + status=failed', { tenantId: tenant.workspace_id, status: 'failed', limit: 21 }],
  ]
  for (const [name, query] of plans) console.log(`\n${name}:\n  ${summarisePlan(log.explain(query)).join('\n  ')}`)
  db.close()
}

async function main(): Promise<void> {
  const dir = resolve(flag('dir', './data-bench-attempts'))
  const requests = Number(flag('requests', '500'))
  const manifest = JSON.parse(readFileSync(join(dir, 'bench-manifest.json'), 'utf8')) as SeedManifest
  if (process.argv.includes('--plans')) printPlans(dir, manifest)
  const config = loadConfig({
    DATA_DIR: dir,
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    LOG_LEVEL: 'silent',
    ADMIN_API_KEY: ADMIN_KEY,
  })
  const postgres = flag('store', 'sqlite') === 'postgres' ? await startTestPostgres({ durable: true }) : undefined
  if (postgres) {
    const t0 = performance.now()
    await copySqliteToPostgres({
      from: dir,
      to: postgres.url,
      log: (line) => /verified/.test(line) && console.log(line),
    })
    console.log(`copied into PostgreSQL in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  }
  const lk = await startLatchkey(postgres ? { ...config, DATABASE_URL: postgres.url } : config).catch(
    (error: unknown) => {
      postgres?.stop()
      throw error
    },
  )
  try {
    const size = (statSync(databasePath(dir)).size / 2 ** 20).toFixed(0)
    console.log(
      `\n${manifest.attempts.toLocaleString('en')} attempts, ${manifest.events.toLocaleString('en')} events, ${manifest.tenants.length} tenants; database ${size} MiB`,
    )
    console.log(
      `${requests} first-page requests per case, one at a time (Outpost limit 100, v1 limit 20); latency in ms\n`,
    )
    console.log('| case | requests | rows/page | p50 | p99 | max |\n|---|---|---|---|---|---|')
    const draw = seededRandom(7)
    for (const c of cases(manifest, lk.httpUrl)) console.log(await measure(lk.httpUrl, c, requests, draw))
  } finally {
    await lk.close()
    postgres?.stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
