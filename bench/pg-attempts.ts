/**
 * The PostgreSQL store's share of a lock command, alone: no HTTP, no MQTT (docs/performance.md, "SQLite and
 * PostgreSQL side by side"). Standalone:
 *
 *   npx tsx bench/pg-attempts.ts [--attempts 20000] [--in-flight 10]
 *
 * Starts a private PostgreSQL 15 (as `--store postgres` does: fsync on, `synchronous_commit` off) and drives the
 * store as an instantly acking lock's commands do, `--in-flight` at a time, each on a lock of its own: the attempt
 * created; marked sent; the lock's ack with its state and the ack's transition, queued together; the lock's `state`
 * message. Prints attempts/s, this process's and the server's CPU time per attempt, the server's transactions per
 * attempt, and the share of row updates PostgreSQL made in place (HOT).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { newId } from '../src/app/ids.js'
import { applyAck, createAttempt, markSent } from '../src/domain/attempt.js'
import { iso } from '../src/domain/clock.js'
import { applyState } from '../src/domain/device.js'
import { createPostgresStore } from '../src/store/postgres/index.js'
import { startTestPostgres } from '../scripts/pg-test-server.js'
import { queryPostgres } from '../test/helpers/store.js'

const { values } = parseArgs({
  options: { attempts: { type: 'string', default: '20000' }, 'in-flight': { type: 'string', default: '10' } },
})
const total = Number(values.attempts)
const inFlight = Number(values['in-flight'])

/** User + system CPU time in ms of the server's processes: the postmaster (its pid file) and its children. */
function serverCpuMs(dataDir: string): number {
  const postmaster = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] as string
  let ticks = 0
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (pid === postmaster || fields[1] === postmaster) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * 10 // USER_HZ = 100
}

const server = await startTestPostgres()
try {
  const url = server.url.replace(/\/postgres$/, '/bench')
  await queryPostgres(server.url, 'CREATE DATABASE bench')
  const store = await createPostgresStore({ url, newId, now: () => iso(Date.now()) })
  const locks = Array.from({ length: inFlight }, () => newId())
  await queryPostgres(url, `INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('ws', 'bench', $1)`, [
    iso(Date.now()),
  ])
  await queryPostgres(
    url,
    `INSERT INTO devices (device_id, workspace_id, display_name, custom_metadata, secret_hash, can_remotely_lock,
       can_remotely_unlock, created_at, online) SELECT id, 'ws', 'door', '{}', 'x', true, true, $2, true
     FROM unnest($1::text[]) AS id`,
    [locks, iso(Date.now())],
  )

  const command = async (deviceId: string, n: number): Promise<void> => {
    const now = Date.now()
    const { attempt, history, events } = createAttempt(
      {
        action_attempt_id: newId(),
        action_type: n % 2 === 0 ? 'LOCK_DOOR' : 'UNLOCK_DOOR',
        device_id: deviceId,
        workspace_id: 'ws',
        now: iso(now),
        deadline_at: iso(now + 60_000),
      },
      true,
    )
    const id = attempt.action_attempt_id
    await store.attempts.create(attempt, history, events)
    await store.attempts.transition(id, (a) => markSent(a, iso(Date.now())), { deviceId })
    const state = { locked: n % 2 === 0 }
    await Promise.all([
      store.devices.change(deviceId, (d) => applyState(d, state, iso(Date.now()))),
      store.attempts.transition(id, (a) => applyAck(a, { command_id: id, status: 'success' }, iso(Date.now())), {
        deviceId,
      }),
    ])
    await store.devices.change(deviceId, (d) => applyState(d, state, iso(Date.now())))
  }

  const stats = async () =>
    (
      await queryPostgres(
        url,
        `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::int AS commits,
           sum(n_tup_upd)::int AS updates, sum(n_tup_hot_upd)::int AS hot
         FROM pg_stat_user_tables WHERE relname IN ('devices', 'action_attempts')`,
      )
    )[0] as { commits: number; updates: number; hot: number }

  // Warm-up: the caches, the prepared statements, the remembered rows.
  await Promise.all(locks.map((lock) => command(lock, 0)))
  const before = { stats: await stats(), cpu: process.cpuUsage(), server: serverCpuMs(join(server.dir, 'data')) }
  const started = performance.now()
  let next = 0
  await Promise.all(
    locks.map(async (lock) => {
      while (next < total) await command(lock, next++)
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(before.cpu)
  const server2 = serverCpuMs(join(server.dir, 'data'))
  // The statistics collector reports a moment later.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const after = await stats()
  const n = next
  console.log(
    JSON.stringify({
      attempts: n,
      in_flight: inFlight,
      attempts_per_s: Math.round(n / seconds),
      latchkey_cpu_ms_per_attempt: +((cpu.user + cpu.system) / 1000 / n).toFixed(3),
      server_cpu_ms_per_attempt: +((server2 - before.server) / n).toFixed(3),
      commits_per_attempt: +((after.commits - before.stats.commits) / n).toFixed(2),
      hot_update_share: +((after.hot - before.stats.hot) / Math.max(1, after.updates - before.stats.updates)).toFixed(
        2,
      ),
    }),
  )
  await store.close()
} finally {
  server.stop()
}
