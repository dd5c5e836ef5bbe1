import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, vi } from 'vitest'
import { startChild, type ChildLatchkey } from '../helpers/child.js'
import { createDevice, waitForProps } from '../helpers/devices.js'
import { instanceEnv, it as base, testDevice } from '../helpers/cluster.js'
import { ADMIN_KEY, request, type TestLatchkey } from '../helpers/latchkey.js'
import { Receiver } from '../webhooks/helpers.js'

/**
 * Failover (docs/scale-out.md#when-something-dies): instance A, a child process, takes 40 lock requests and is
 * killed with SIGKILL while its webhook attempts are in flight and its silent attempts pending. Instance B, in
 * process on the same PostgreSQL and mosquitto, settles A's attempts by their deadlines (the sweep) and takes over
 * A's deliveries once their leases lapse.
 */
const LEASE_MS = 3000
const WEBHOOK_TIMEOUT_MS = 2000
const SILENT_TIMEOUT_MS = 6000

interface Cluster {
  db: pg.Client
  /** The environment of either instance; A and B differ by INSTANCE_ID (and A's DATA_DIR). */
  env: (id: string) => Record<string, string>
  b: TestLatchkey
  receiver: Receiver
  /** The receiver answers 204 once open; until then every request hangs (the attempt stays in flight). */
  gate: { open: boolean }
  startA: () => Promise<ChildLatchkey>
}

const it = base.extend<{ cluster: Cluster }>({
  cluster: async ({ createDatabase, mosquitto, start, defer }, use) => {
    const url = await createDatabase('latchkey_failover')
    const gate = { open: false }
    const receiver = await Receiver.start(() => (gate.open ? { status: 204 } : 'hang'))
    defer(() => receiver.close())
    const env = (id: string) => ({
      ...instanceEnv(mosquitto, url, id),
      ADMIN_API_KEY: ADMIN_KEY,
      ACTION_TIMEOUT_MS: '8000',
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
      WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1',
      WEBHOOK_DISABLE_AFTER: '100000',
      DELIVERY_LEASE_MS: String(LEASE_MS),
    })
    const b = await start({ env: env('b') })
    const db = new pg.Client({ connectionString: url })
    // The fixtures stop PostgreSQL last; a connection dropped meanwhile is no test failure.
    db.on('error', () => {})
    await db.connect()
    defer(() => db.end())
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-failover-'))
    defer(() => rmSync(dataDir, { recursive: true, force: true }))
    const startA = async () => {
      const child = await startChild({ ...env('a'), DATA_DIR: dataDir })
      defer(() => child.kill())
      return child
    }
    await use({ db, env, b, receiver, gate, startA })
  },
})

interface AttemptRow {
  action_attempt_id: string
  status: string
  error: string | null
  deadline_at: string
  completed_at: string | null
}

describe('failover between two instances on PostgreSQL and mosquitto', () => {
  it('SIGKILL of A: every attempt settles once, every event is delivered, and A serves again after a restart', async ({
    cluster,
    mosquitto,
    defer,
  }) => {
    // Scenario: a webhook for action_attempt.*; the receiver hangs every request until A is dead. Through A: 20
    // locks of a device that acks at once, 20 of a silent one (deadline 6 s). Once A holds a delivery's lease
    // mid-attempt, SIGKILL A and open the receiver → all 40 settle exactly once (success, or expired by the
    // deadline, through B's sweep), one action_attempt.* event each, each delivered; A's leased deliveries are
    // delivered by B after their lease lapsed, within lease + 2 s; A restarted serves a lock again.
    const { db, b, receiver, gate } = cluster
    const key = b.apiKey
    const hook = await b.call('/webhooks/create', { url: receiver.url, event_types: ['action_attempt.*'] })
    expect(hook.status, JSON.stringify(hook.body)).toBe(200)
    const acking = await createDevice(b, 'acks at once')
    const silent = await createDevice(b, 'silent')
    for (const [made, acks] of [
      [acking, true],
      [silent, false],
    ] as const) {
      const client = await testDevice(mosquitto.url, made.deviceId, made.password, { acks })
      defer(() => client.end(true))
      await waitForProps(b, made.deviceId, (p) => p.online === true, key)
    }

    let a = await cluster.startA()
    const lockThroughA = (body: Record<string, unknown>) => request(a.httpUrl, '/locks/lock_door', body, key)
    const ids: { acked: string[]; silent: string[] } = { acked: [], silent: [] }
    for (let i = 0; i < 20; i++) {
      const fast = await lockThroughA({ device_id: acking.deviceId, sync: false })
      expect(fast.status, JSON.stringify(fast.body)).toBe(200)
      ids.acked.push(fast.body.action_attempt.action_attempt_id)
      const slow = await lockThroughA({ device_id: silent.deviceId, sync: false, timeout_ms: SILENT_TIMEOUT_MS })
      expect(slow.status, JSON.stringify(slow.body)).toBe(200)
      ids.silent.push(slow.body.action_attempt.action_attempt_id)
    }
    const all = [...ids.acked, ...ids.silent]

    // A is mid-attempt on at least one delivery (the receiver hangs, the webhook timeout is 2 s): kill it then.
    let leasedByA: Array<{ seq: number; lease_until: string }> = []
    await vi.waitFor(
      async () => {
        leasedByA = (
          await db.query<{ seq: number; lease_until: string }>(
            `SELECT seq::int AS seq, lease_until FROM deliveries WHERE lease_owner = 'a' AND status = 'pending'
               AND lease_until > $1`,
            [new Date().toISOString()],
          )
        ).rows
        expect(leasedByA.length).toBeGreaterThan(0)
      },
      { timeout: 15_000, interval: 20 },
    )
    await a.kill('SIGKILL')
    const killedAt = Date.now()
    gate.open = true
    const earliestSilentDeadline = Math.min(
      ...(
        await db.query<{ deadline_at: string }>(
          'SELECT deadline_at FROM action_attempts WHERE action_attempt_id = ANY($1)',
          [ids.silent],
        )
      ).rows.map((row) => Date.parse(row.deadline_at)),
    )
    // The silent attempts are still pending when A dies: only another instance can settle them.
    expect(killedAt).toBeLessThan(earliestSilentDeadline)

    // Every attempt settles: success, or expired by its deadline (B's sweep, at most 1 s after it, plus slack).
    let attempts: AttemptRow[] = []
    await vi.waitFor(
      async () => {
        attempts = (
          await db.query<AttemptRow>(
            `SELECT action_attempt_id, status, error, deadline_at, completed_at FROM action_attempts
             WHERE action_attempt_id = ANY($1)`,
            [all],
          )
        ).rows
        expect(attempts.filter((row) => row.status === 'pending')).toEqual([])
      },
      { timeout: 20_000, interval: 50 },
    )
    expect(attempts).toHaveLength(40)
    let latest = 0
    for (const row of attempts) {
      if (row.status === 'success') continue
      expect(row.status).toBe('error')
      expect(JSON.parse(row.error ?? '{}').type).toBe('action_attempt_expired')
      const late = Date.parse(row.completed_at ?? '') - Date.parse(row.deadline_at)
      expect(late).toBeGreaterThanOrEqual(0)
      latest = Math.max(latest, late)
    }
    expect(latest).toBeLessThan(2000)
    for (const id of ids.silent) expect(attempts.find((row) => row.action_attempt_id === id)?.status).toBe('error')
    // A died before any of these deadlines: B's sweep settled every expired one.
    const expired = attempts.filter((row) => row.status === 'error').length
    expect(b.lk.metrics.get('attempt_deadlines_swept_total')).toBe(expired)

    // Exactly one action_attempt.* event per attempt.
    const events = (
      await db.query<{ action_attempt_id: string; event_id: string }>(
        `SELECT action_attempt_id, event_id FROM events WHERE event_type LIKE 'action_attempt.%'
           AND action_attempt_id = ANY($1)`,
        [all],
      )
    ).rows
    expect(events).toHaveLength(40)
    expect(new Set(events.map((event) => event.action_attempt_id)).size).toBe(40)

    // Each delivered at least once to the receiver, and none stuck: every delivery ends delivered.
    await vi.waitFor(
      async () => {
        const owed = await db.query(`SELECT seq FROM deliveries WHERE status <> 'delivered'`)
        expect(owed.rows).toEqual([])
      },
      { timeout: 20_000, interval: 50 },
    )
    const received = new Set(receiver.received.map((r) => r.id))
    for (const event of events) expect(received.has(event.event_id), event.event_id).toBe(true)

    // A's deliveries were left to their lease, then taken over by B within lease + 2 s.
    for (const { seq, lease_until } of leasedByA) {
      const made = (
        await db.query<{ attempted_at: string; status: string }>(
          'SELECT attempted_at, status FROM delivery_attempts WHERE delivery_seq = $1 ORDER BY attempted_at',
          [seq],
        )
      ).rows
      expect(made.some((attempt) => attempt.status === 'success')).toBe(true)
      // A's own attempt died with it, unrecorded: the first recorded one is B's, made after the lease lapsed.
      const after = Date.parse(made[0]?.attempted_at ?? '') - Date.parse(lease_until)
      expect(after, `delivery ${seq}`).toBeGreaterThanOrEqual(0)
      expect(after, `delivery ${seq}`).toBeLessThan(2000)
    }

    // B took them over by its poll, once their lease had lapsed.
    expect(b.lk.metrics.get('webhook_delivery_claims_total', { result: 'polled' })).toBeGreaterThanOrEqual(
      leasedByA.length,
    )

    // A restarts on the same environment and serves again.
    a = await cluster.startA()
    const again = await lockThroughA({ device_id: acking.deviceId, sync: true })
    expect(again.status).toBe(200)
    expect(again.body.action_attempt.status).toBe('success')
  }, 90_000)
})
