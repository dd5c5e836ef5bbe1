/**
 * Pages written to SQLite's WAL per lock command at 1 in flight, by b-tree (docs/performance.md, "Pages per attempt
 * at 1 in flight, by b-tree"). Standalone:
 *
 *   npx tsx bench/wal-pages.ts [--attempts 300] [--warmup 3000] [--devices 100]
 *
 * Drives the SQLite store as the end-to-end bench's instant locks do, one attempt at a time: the attempt is created
 * (one commit), then the lock's `success` ack records `sent` and settles it (a second commit, two events, the
 * device's `locked`). After `--warmup` attempts the WAL is emptied and a reader holds a snapshot, so no checkpoint
 * copies or resets it; after `--attempts` more, every WAL frame's page number is mapped to its table or index through
 * SQLite's `dbstat`. Prints pages per attempt per b-tree, commits and WAL bytes per attempt, and the process's CPU
 * time per attempt during the warm-up (the store alone: no HTTP, no MQTT; checkpoints on their timer).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { newId } from '../src/app/ids.js'
import { applyAck, createAttempt } from '../src/domain/attempt.js'
import { iso } from '../src/domain/clock.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { addOnlineLock } from './lib/store.js'
import { walPages } from './lib/wal.js'

const { values } = parseArgs({
  options: {
    attempts: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '3000' },
    devices: { type: 'string', default: '100' },
  },
})
const measured = Number(values.attempts)
const warmup = Number(values.warmup)
const deviceCount = Number(values.devices)

const dir = mkdtempSync(join(tmpdir(), 'latchkey-wal-pages-'))
const filename = join(dir, 'latchkey.db')
try {
  const now = () => iso(Date.now())
  const store = createSqliteStore({ filename, newId, now })
  const workspaceId = newId()
  await store.workspaces.create({ workspace_id: workspaceId, name: 'bench', created_at: now() })
  const devices: string[] = []
  for (let i = 0; i < deviceCount; i++) devices.push(await addOnlineLock(store.devices, workspaceId, `Door ${i}`, now))

  let n = 0
  const attempt = async () => {
    const at = now()
    const id = newId()
    const created = createAttempt(
      {
        action_attempt_id: id,
        action_type: Math.floor(n / devices.length) % 2 === 0 ? 'LOCK_DOOR' : 'UNLOCK_DOOR',
        device_id: devices[n % devices.length] as string,
        workspace_id: workspaceId,
        now: at,
        deadline_at: iso(Date.now() + 8000),
      },
      true,
    )
    n++
    await store.attempts.create(created.attempt, created.history, created.events)
    await store.attempts.transition(id, (current) => applyAck(current, { command_id: id, status: 'success' }, now()))
  }
  const cpu = process.cpuUsage()
  for (let i = 0; i < warmup; i++) await attempt()
  const used = process.cpuUsage(cpu)
  const cpuMsPerAttempt = (used.user + used.system) / 1000 / warmup

  const {
    pageSize,
    frames,
    commits,
    byTree: rows,
  } = await walPages(filename, 'action_attempts', async () => {
    for (let i = 0; i < measured; i++) await attempt()
  })
  await store.close()

  const width = Math.max(...rows.map(([name]) => name.length))
  process.stdout.write(`${measured} attempts after ${warmup} of warm-up, ${deviceCount} devices, ${pageSize} B pages\n`)
  for (const [name, count] of rows)
    process.stdout.write(`${name.padEnd(width)}  ${(count / measured).toFixed(2).padStart(6)}\n`)
  process.stdout.write(
    `${'total'.padEnd(width)}  ${(frames / measured).toFixed(2).padStart(6)} pages per attempt, ` +
      `${(commits / measured).toFixed(2)} commits, ${((frames * (pageSize + 24)) / measured / 1024).toFixed(1)} KiB of WAL\n`,
  )
  process.stdout.write(`CPU per attempt during the warm-up: ${cpuMsPerAttempt.toFixed(3)} ms\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
