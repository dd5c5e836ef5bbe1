/**
 * What reading a row costs, named by better-sqlite3 or read as an array and named here (docs/performance.md#rows-as-
 * arrays). Standalone:
 *
 *   npx tsx bench/read-rows.ts [--reads 200000] [--rounds 4]
 *
 * Reads the two rows a lock command's write jobs read, the attempt's (an ack) and the device's (a device message),
 * by id from a file with one of each, and makes the domain objects of them, both ways, alternating in one process.
 * Prints the CPU time per pair of reads of each way, round by round.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { newId } from '../src/app/ids.js'
import { createAttempt } from '../src/domain/attempt.js'
import { iso } from '../src/domain/clock.js'
import {
  ATTEMPT_COLUMN_NAMES,
  ATTEMPT_COLUMNS,
  attemptFromRow,
  attemptRowOf,
  DEVICE_COLUMN_NAMES,
  DEVICE_COLUMNS,
  deviceFromRow,
  deviceRowOf,
  type AttemptRow,
  type DeviceRow,
} from '../src/store/rows.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { rawColumns } from '../src/store/sqlite/raw-rows.js'
import { addOnlineLock } from './lib/store.js'

const { values } = parseArgs({
  options: { reads: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '4' } },
})
const reads = Number(values.reads)
const rounds = Number(values.rounds)

const dir = mkdtempSync(join(tmpdir(), 'latchkey-read-rows-'))
try {
  const filename = join(dir, 'latchkey.db')
  const now = () => iso(Date.now())
  const store = createSqliteStore({ filename, newId, now })
  const workspaceId = newId()
  await store.workspaces.create({ workspace_id: workspaceId, name: 'bench', created_at: now() })
  const deviceId = await addOnlineLock(store.devices, workspaceId, 'Front door', now)
  const attemptId = newId()
  const created = createAttempt(
    {
      action_attempt_id: attemptId,
      action_type: 'LOCK_DOOR',
      device_id: deviceId,
      workspace_id: workspaceId,
      now: now(),
      deadline_at: iso(Date.now() + 8000),
    },
    true,
  )
  await store.attempts.create(created.attempt, created.history, created.events)
  await store.close()

  const db = new Database(filename, { readonly: true })
  const attemptSql = `SELECT ${ATTEMPT_COLUMNS} FROM action_attempts WHERE action_attempt_id = ?`
  const deviceSql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ?`
  const named = {
    attempt: db.prepare<[string], AttemptRow>(attemptSql),
    device: db.prepare<[string], DeviceRow>(deviceSql),
  }
  const arrays = {
    attempt: rawColumns(db.prepare<[string], unknown[]>(attemptSql), ATTEMPT_COLUMN_NAMES),
    device: rawColumns(db.prepare<[string], unknown[]>(deviceSql), DEVICE_COLUMN_NAMES),
  }
  let sink = 0
  const byName = () => {
    for (let i = 0; i < reads; i++) {
      const attempt = attemptFromRow(named.attempt.get(attemptId) as AttemptRow)
      const device = deviceFromRow(named.device.get(deviceId) as DeviceRow)
      sink += attempt.status.length + device.device_id.length
    }
  }
  const byPosition = () => {
    for (let i = 0; i < reads; i++) {
      const attempt = attemptFromRow(attemptRowOf(arrays.attempt.get(attemptId) as unknown[]))
      const device = deviceFromRow(deviceRowOf(arrays.device.get(deviceId) as unknown[]))
      sink += attempt.status.length + device.device_id.length
    }
  }
  const cpuUs = (run: () => void) => {
    const start = process.cpuUsage()
    run()
    const used = process.cpuUsage(start)
    return (used.user + used.system) / reads
  }
  for (let round = 1; round <= rounds; round++) {
    const a = cpuUs(byName)
    const b = cpuUs(byPosition)
    console.log(`round ${round}: named rows ${a.toFixed(2)} µs, arrays ${b.toFixed(2)} µs per attempt + device read`)
  }
  db.close()
  if (sink === 0) throw new Error('nothing read')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
