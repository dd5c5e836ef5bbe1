/**
 * The SQLite store's share of a webhook fan-out, alone: no HTTP, no dispatcher (docs/performance.md, "Webhook
 * fan-out"). Standalone:
 *
 *   npx tsx bench/record-attempts.ts [--events 4000] [--per-turn 100]
 *
 * Seeds a fresh database in a temporary directory with 10 webhooks on `*` and `--events` events (one delivery per
 * webhook each), then does what the dispatcher does for every delivery, `--per-turn` deliveries per event-loop turn:
 * `loadForAttempt`, then `recordAttempt` of a 200 with the decision, awaited together. Prints the CPU time of the
 * process per delivery. The seeding is not measured.
 */
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { newId } from '../src/app/ids.js'
import { iso } from '../src/domain/clock.js'
import type { AttemptInput } from '../src/domain/delivery.js'
import { attemptRecord, decideAfterAttempt, responseResult } from '../src/domain/webhook-delivery.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { walPages } from './lib/wal.js'

const WEBHOOKS = 10
/** What the end-to-end bench's lock commands emit, in turn. */
const TYPES = [
  'action_attempt.lock_door.succeeded',
  'lock.locked',
  'action_attempt.unlock_door.succeeded',
  'lock.unlocked',
]

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '4000' },
    'per-turn': { type: 'string', default: '100' },
    pages: { type: 'boolean', default: false },
  },
})
const events = Number(values.events)
const perTurn = Number(values['per-turn'])

function seed(filename: string): void {
  const db = new Database(filename)
  const at = iso(Date.now())
  const addWebhook = db.prepare(
    `INSERT INTO webhooks (webhook_id, workspace_id, url, event_types, secret, created_at, updated_at)
     VALUES (?, ?, ?, '["*"]', ?, ?, ?)`,
  )
  const addEvent = db.prepare(
    'INSERT INTO events (event_id, workspace_id, event_type, created_at, body) VALUES (?, ?, ?, ?, ?)',
  )
  const addDelivery = db.prepare(
    `INSERT INTO deliveries (event_seq, event_id, webhook_id, workspace_id, event_type, status, held, next_attempt_at,
       created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
  )
  db.transaction(() => {
    // Ids as latchkey mints them (UUIDs): their length decides how many index entries fit a page.
    const workspaceId = newId()
    db.prepare('INSERT INTO workspaces (workspace_id, name, created_at) VALUES (?, ?, ?)').run(workspaceId, 'bench', at)
    const webhooks = Array.from({ length: WEBHOOKS }, () => newId())
    for (const [k, id] of webhooks.entries()) {
      const secret = `whsec_${Buffer.alloc(32, k).toString('base64')}`
      addWebhook.run(id, workspaceId, `http://127.0.0.1:9/hook-${k}`, secret, at, at)
    }
    for (let i = 0; i < events; i++) {
      const eventId = newId()
      const type = TYPES[i % TYPES.length] as string
      const body = JSON.stringify({ event_id: eventId, event_type: type, workspace_id: workspaceId, created_at: at })
      const seq = Number(addEvent.run(eventId, workspaceId, type, at, body).lastInsertRowid)
      for (const webhook of webhooks) addDelivery.run(seq, eventId, webhook, workspaceId, type, at, at, at)
    }
  })()
  db.close()
}

/** WAL pages written per delivery, by b-tree, while `work` records `deliveries` attempts (bench/lib/wal.ts). */
async function pagesPerDelivery(filename: string, work: () => Promise<void>, deliveries: number): Promise<void> {
  const { pageSize, frames, commits, byTree } = await walPages(filename, 'deliveries', work)
  const width = Math.max(...byTree.map(([name]) => name.length))
  console.log(`WAL pages per delivery over the last ${deliveries} (${pageSize} B pages):`)
  for (const [name, count] of byTree)
    console.log(`  ${name.padEnd(width)}  ${(count / deliveries).toFixed(2).padStart(6)}`)
  console.log(
    `  ${'total'.padEnd(width)}  ${(frames / deliveries).toFixed(2).padStart(6)}, ${commits} commits, ` +
      `${((frames * (pageSize + 24)) / deliveries / 1024).toFixed(2)} KiB of WAL per delivery`,
  )
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-record-attempts-'))
  try {
    const filename = join(dir, 'latchkey.db')
    const store = createSqliteStore({ filename, newId, now: () => iso(Date.now()) })
    seed(filename)
    const policy = { scheduleSeconds: [1, 5], disableAfter: 100, random: Math.random }
    // What the bench's receiver (node:http) answers.
    const headers = {
      'content-type': 'application/json',
      date: new Date().toUTCString(),
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'content-length': '11',
    }
    const total = events * WEBHOOKS
    const deliver = async (seq: number) => {
      const plan = await store.deliveries.loadForAttempt(seq)
      if (!plan) throw new Error(`no delivery ${seq}`)
      const input: AttemptInput = {
        delivery_seq: seq,
        attempted_at: iso(Date.now()),
        duration_ms: 1,
        response_code: 200,
        response_headers: headers,
        response_body: '{"ok":true}',
        error_message: null,
        signature: 'v1,bWVhc3VyZWQgc2lnbmF0dXJlIG9mIDMyIGJ5dGVzIQ==',
        manual: false,
      }
      const result = responseResult(200, undefined)
      const recorded = await store.deliveries.recordAttempt(input, (ctx) =>
        attemptRecord(decideAfterAttempt(result, ctx, policy, Date.now()), ctx),
      )
      if (!recorded) throw new Error(`delivery ${seq} not recorded`)
    }
    const run = async (from: number, to: number) => {
      for (let first = from; first <= to; first += perTurn) {
        const turn: Promise<void>[] = []
        for (let seq = first; seq < Math.min(to + 1, first + perTurn); seq++) turn.push(deliver(seq))
        await Promise.all(turn)
      }
    }
    const cpu = process.cpuUsage()
    const started = performance.now()
    // With --pages, the last fifth runs with the WAL held (below), and is not timed.
    const timed = values.pages ? total - Math.floor(total / 5 / perTurn) * perTurn : total
    await run(1, timed)
    const used = process.cpuUsage(cpu)
    const seconds = (performance.now() - started) / 1000
    const perDeliveryUs = (used.user + used.system) / timed
    console.log(
      `${timed} deliveries, ${perTurn} per turn: ${perDeliveryUs.toFixed(1)} µs CPU each, ${Math.round(timed / seconds)}/s`,
    )
    if (values.pages) await pagesPerDelivery(filename, () => run(timed + 1, total), total - timed)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
