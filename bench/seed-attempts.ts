/**
 * Seeds a fresh latchkey database with a large webhook delivery log, for bench/list-attempts.ts (docs/performance.md,
 * "Listing delivery attempts with 1,000,000 rows"). Standalone:
 *
 *   npx tsx bench/seed-attempts.ts [--attempts 1000000] [--tenants 10] [--dir ./data-bench-attempts]
 *
 * Writes workspaces (tenants, each with an API key), webhooks (destinations), events, deliveries and exactly
 * `--attempts` delivery attempt rows, in transactions of 10,000 attempts with prepared statements, through the real
 * migrations. Tenant sizes are skewed (tenant i weighs 1/(i+1)), times span 30 days up to the start of the run, and
 * every destination URL is loopback (127.0.0.1:9, the discard port; the SSRF guard refuses it anyway), so a latchkey
 * started on the directory sends nothing anywhere. A manifest (bench-manifest.json) tells the benchmark what exists.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { openDatabase, type Db } from '../src/store/sqlite/database.js'
import { evidenceId } from '../src/store/rows.js'
import { databasePath } from '../src/store/sqlite/index.js'
import { EVENT_TYPES } from '../src/domain/events.js'
import { seededRandom } from '../simulator/behaviour.js'

export interface SeedOptions {
  attempts: number
  tenants: number
  webhooksPerTenant: number
  days: number
  /** End of the seeded period (ms); scheduled attempts fall after it. */
  now: number
  seed: number
}

export interface SeededTenant {
  workspace_id: string
  api_key: string
  webhooks: string[]
  attempts: number
}

export interface SeedManifest {
  attempts: number
  events: number
  deliveries: number
  scheduled: number
  from: string
  to: string
  tenants: SeededTenant[]
  /** A sample of event ids, for the event_id filter. */
  sample_events: string[]
}

function uuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)] as T
}

const BATCH = 10_000

/** The automatic schedule after the first try (the defaults of docs/webhooks.md#retries), in ms. */
const RETRY_OFFSETS = [0, 5, 300, 1800, 7200, 18000, 36000, 36000].map((s) => s * 1000)
/** Frequent types first: lock traffic dominates a real log. */
const TOPICS = [...EVENT_TYPES.slice(4, 6), ...EVENT_TYPES.slice(4, 6), ...EVENT_TYPES]

interface Outcome {
  codes: Array<number | null>
  /** The delivery waits for another automatic attempt, due after `now`. */
  scheduled: boolean
}

/** What happens to one delivery: mostly a first-try success, some retries, a few give up or are still waiting. */
function outcome(random: () => number): Outcome {
  const r = random()
  const failure = () => pick([500, 503, 502, 429, null], random)
  if (r < 0.85) return { codes: [pick([200, 204], random)], scheduled: false }
  if (r < 0.95)
    return { codes: [...Array.from({ length: 1 + Math.floor(random() * 3) }, failure), 200], scheduled: false }
  if (r < 0.99) return { codes: Array.from({ length: RETRY_OFFSETS.length }, failure), scheduled: false }
  return { codes: Array.from({ length: 1 + Math.floor(random() * 2) }, failure), scheduled: true }
}

function statements(db: Db) {
  return {
    workspace: db.prepare('INSERT INTO workspaces (workspace_id, name, created_at) VALUES (?, ?, ?)'),
    apiKey: db.prepare(
      'INSERT INTO api_keys (api_key_id, workspace_id, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    webhook: db.prepare(
      `INSERT INTO webhooks (webhook_id, workspace_id, url, event_types, secret, enabled, consecutive_failures, created_at, updated_at)
       VALUES (?, ?, 'http://127.0.0.1:9/hook', ?, ?, 1, 0, ?, ?)`,
    ),
    event: db.prepare(
      'INSERT INTO events (event_id, workspace_id, event_type, device_id, action_attempt_id, created_at, dedupe_key, body) VALUES (?, ?, ?, ?, NULL, ?, NULL, ?)',
    ),
    delivery: db.prepare(
      `INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held, attempt_count, retries_scheduled,
         next_attempt_at, last_attempt_at, last_evidence_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    attempt: db.prepare(
      `INSERT INTO delivery_attempts (attempt_id, delivery_seq, workspace_id, event_id, webhook_id, event_type, attempt_number, manual,
         status, attempted_at, duration_ms, response_code, response_headers, response_body, error_message, signature, will_retry, evidence_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
  }
}

type Statements = ReturnType<typeof statements>
type Tenant = SeededTenant & { weight: number; patterns: string[][] }

function matches(patterns: string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))))
}

interface Event {
  tenant: Tenant
  id: string
  seq: number
  type: string
  time: number
}

interface Attempt {
  id: string
  at: string
  code: number | null
  willRetry: boolean
  signature: string
  evidence: string
}

/** Writes rows as the dispatcher would have: a delivery per matching webhook, each attempt chained to the last. */
class Seeder {
  readonly manifest: SeedManifest
  private readonly random: () => number
  private readonly s: Statements
  private readonly tenants: Tenant[]
  private readonly totalWeight: number
  private counter = 0
  private time: number
  private readonly step: number

  constructor(
    private readonly db: Db,
    private readonly options: SeedOptions,
  ) {
    this.random = seededRandom(options.seed)
    this.s = statements(db)
    this.tenants = db.transaction(() => this.seedTenants())()
    this.totalWeight = this.tenants.reduce((sum, t) => sum + t.weight, 0)
    // Events end two days before `now`, so that every automatic retry of the schedule (~38 h) lies in the past.
    this.time = options.now - options.days * 86_400_000
    this.step = ((options.days - 2) * 86_400_000) / (options.attempts / 6.4)
    this.manifest = {
      attempts: 0,
      events: 0,
      deliveries: 0,
      scheduled: 0,
      from: new Date(this.time).toISOString(),
      to: '',
      tenants: [],
      sample_events: [],
    }
  }

  run(): SeedManifest {
    while (this.manifest.attempts < this.options.attempts) {
      // A batch ends after the event that takes it to 10,000 attempt rows (an event's rows stay together).
      const end = Math.min(this.manifest.attempts + BATCH, this.options.attempts)
      this.db.transaction(() => {
        while (this.manifest.attempts < end) this.writeEvent()
      })()
    }
    this.manifest.to = new Date(this.time).toISOString()
    this.manifest.tenants = this.tenants.map(({ workspace_id, api_key, webhooks, attempts }) => ({
      workspace_id,
      api_key,
      webhooks,
      attempts,
    }))
    return this.manifest
  }

  private seedTenants(): Tenant[] {
    const at = new Date(this.options.now - (this.options.days + 1) * 86_400_000).toISOString()
    return Array.from({ length: this.options.tenants }, (_, i) => {
      const workspaceId = uuid(this.random)
      const apiKey = `seam_0bench${i.toString().padStart(4, '0')}${randomBytes(12).toString('hex')}`
      this.s.workspace.run(workspaceId, `bench tenant ${i}`, at)
      this.s.apiKey.run(uuid(this.random), workspaceId, createHash('sha256').update(apiKey).digest('hex'), 'bench', at)
      // The first destination of each tenant takes lock events only: destination and topic filters then differ.
      const patterns = Array.from({ length: this.options.webhooksPerTenant }, (_, w) => (w === 0 ? ['lock.*'] : ['*']))
      const webhooks = patterns.map((types) => {
        const id = uuid(this.random)
        this.s.webhook.run(
          id,
          workspaceId,
          JSON.stringify(types),
          `whsec_${randomBytes(32).toString('base64')}`,
          at,
          at,
        )
        return id
      })
      return { workspace_id: workspaceId, api_key: apiKey, webhooks, attempts: 0, weight: 1 / (i + 1), patterns }
    })
  }

  private writeEvent(): void {
    let r = this.random() * this.totalWeight
    const tenant = this.tenants.find((t) => (r -= t.weight) < 0) ?? (this.tenants[0] as Tenant)
    const type = pick(TOPICS, this.random)
    const id = uuid(this.random)
    this.time += this.step * (0.5 + this.random())
    const createdAt = new Date(this.time).toISOString()
    const body = JSON.stringify({
      event_id: id,
      workspace_id: tenant.workspace_id,
      event_type: type,
      created_at: createdAt,
      occurred_at: createdAt,
    })
    const seq = Number(
      this.s.event.run(id, tenant.workspace_id, type, uuid(this.random), createdAt, body).lastInsertRowid,
    )
    this.manifest.events++
    if (this.manifest.events % 97 === 0 && this.manifest.sample_events.length < 1000)
      this.manifest.sample_events.push(id)
    tenant.webhooks.forEach((webhookId, w) => {
      if (this.manifest.attempts < this.options.attempts && matches(tenant.patterns[w] as string[], type)) {
        this.writeDelivery({ tenant, id, seq, type, time: this.time }, webhookId)
      }
    })
  }

  private attempts(event: Event, plan: Outcome): Attempt[] {
    const codes = plan.codes.slice(0, this.options.attempts - this.manifest.attempts)
    let previous: string | null = null
    return codes.map((code, i) => {
      const at = new Date(event.time + (RETRY_OFFSETS[i] ?? 0)).toISOString()
      const ok = code !== null && code < 300
      const id = `dlv_${Date.parse(at).toString(16).padStart(12, '0')}${(this.counter++ % 0x1000000).toString(16).padStart(6, '0')}${uuid(this.random).replaceAll('-', '').slice(0, 14)}`
      const signature = `v1,${randomBytes(32).toString('base64')}`
      previous = evidenceId(previous, id, signature, code, at)
      return { id, at, code, willRetry: !ok && (i < codes.length - 1 || plan.scheduled), signature, evidence: previous }
    })
  }

  private writeDelivery(event: Event, webhookId: string): void {
    const plan = outcome(this.random)
    const attempts = this.attempts(event, plan)
    const last = attempts[attempts.length - 1] as Attempt
    const ok = last.code !== null && last.code < 300
    const status = ok ? 'delivered' : plan.scheduled ? 'pending' : 'failed'
    const next =
      status === 'pending' ? new Date(this.options.now + (1 + this.random() * 9) * 3_600_000).toISOString() : null
    const { tenant } = event
    const createdAt = new Date(event.time).toISOString()
    const retries = attempts.length - 1 + (status === 'pending' ? 1 : 0)
    const info = this.s.delivery.run(
      event.seq,
      event.id,
      webhookId,
      tenant.workspace_id,
      event.type,
      status,
      attempts.length,
      retries,
      next,
      last.at,
      last.evidence,
      createdAt,
      createdAt,
    )
    const deliverySeq = Number(info.lastInsertRowid)
    this.manifest.deliveries++
    if (next) this.manifest.scheduled++
    attempts.forEach((a, i) => {
      const success = a.code !== null && a.code < 300
      this.s.attempt.run(
        a.id,
        deliverySeq,
        tenant.workspace_id,
        event.id,
        webhookId,
        event.type,
        i + 1,
        success ? 'success' : 'failed',
        a.at,
        20 + Math.floor(this.random() * 200),
        a.code,
        a.code === null ? null : '{"content-type":"text/plain"}',
        a.code === null ? null : success ? 'ok' : 'upstream unavailable',
        a.code === null ? 'timed out after 15000 ms' : null,
        a.signature,
        a.willRetry ? 1 : 0,
        a.evidence,
      )
    })
    this.manifest.attempts += attempts.length
    tenant.attempts += attempts.length
  }
}

/** Writes the log into a migrated database; returns what the benchmark needs to know about it. */
export function seedAttemptRows(db: Db, options: SeedOptions): SeedManifest {
  return new Seeder(db, options).run()
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

async function main(): Promise<void> {
  const dir = resolve(flag('dir', './data-bench-attempts'))
  const file = databasePath(dir)
  if (existsSync(file)) throw new Error(`${file} exists: seed a fresh directory (or delete it first)`)
  mkdirSync(dir, { recursive: true })
  const db = openDatabase(file)
  // A fresh file that is thrown away if the run dies: durability buys nothing here.
  db.pragma('synchronous = OFF')
  const started = performance.now()
  const manifest = seedAttemptRows(db, {
    attempts: Number(flag('attempts', '1000000')),
    tenants: Number(flag('tenants', '10')),
    webhooksPerTenant: 5,
    days: 30,
    now: Date.now(),
    seed: Number(flag('seed', '42')),
  })
  db.pragma('optimize')
  db.close()
  writeFileSync(join(dir, 'bench-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 })
  const seconds = (performance.now() - started) / 1000
  console.log(
    `seeded ${manifest.attempts} attempts (${manifest.events} events, ${manifest.deliveries} deliveries, ${manifest.scheduled} scheduled) in ${seconds.toFixed(1)} s`,
  )
  console.log(`DATA_DIR=${dir}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
