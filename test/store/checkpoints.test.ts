import { readdirSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, vi } from 'vitest'
import { newId } from '../../src/app/ids.js'
import { iso } from '../../src/domain/clock.js'
import {
  CommitGate,
  nextCheckpointDelay,
  openDatabase,
  startCheckpoints,
  WriteQueue,
  type Db,
} from '../../src/store/sqlite/database.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'

// The SQLite store's checkpoints run in a worker thread with its own connection, so that copying the WAL into the
// database (and its fsyncs) never stalls the event loop (docs/operations.md#checkpoints).

const it = base.extend<{ dir: string }>({
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = tempDataDir()
    await use(dir)
    rmSync(dir, { recursive: true, force: true })
  },
})

/** A file database with a `notes` table, and about 1 MiB of committed rows still in its WAL. */
function withWal(file: string): Db {
  const db = openDatabase(file, ['CREATE TABLE notes (text TEXT NOT NULL)'])
  // As startCheckpoints sets it, before any row: the main connection must not checkpoint by itself here.
  db.pragma('wal_autocheckpoint = 16384')
  const insert = db.prepare('INSERT INTO notes (text) VALUES (?)')
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run(`${i}`.padEnd(500, '.'))
  })()
  return db
}

/** Files this process (any of its threads) holds open under `dir`, by path: SQLite keeps them open per connection. */
function openFilesUnder(dir: string): string[] {
  const files: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(`${dir}/`)) files.push(target)
    } catch {
      // Closed since the listing (readdirSync's own descriptor, for one).
    }
  }
  return files.sort()
}

/** Spins the calling thread until `done()` or the deadline: nothing else in this thread runs meanwhile. */
function busyUntil(done: () => boolean, deadlineMs: number): boolean {
  const end = Date.now() + deadlineMs
  while (Date.now() < end) if (done()) return true
  return done()
}

describe('SQLite checkpoints off the event loop', () => {
  it('copies the WAL into the database file while the main thread is busy', async ({ dir }) => {
    // Scenario: ~1 MiB of commits in the WAL, then the main thread spins without yielding → the database file
    // grows to hold them all the same: the checkpoint ran on another thread, not on this one's timer.
    const file = join(dir, 'latchkey.db')
    const db = withWal(file)
    const before = statSync(file).size
    const close = startCheckpoints(db, { intervalMs: 10 })
    try {
      const copied = busyUntil(() => statSync(file).size > before + 1_000_000, 10_000)
      expect(copied).toBe(true)
      expect(db.prepare('SELECT count(*) AS n FROM notes').get()).toEqual({ n: 2000 })
    } finally {
      await close()
    }
  })

  it('reports each checkpoint, and closes its thread, then the database, then its descriptor', async ({ dir }) => {
    // Scenario: the worker's connection opens the WAL beside the main connection's and reports the whole WAL
    // checkpointed; the close function (twice: idempotent) leaves no file of the database open in this process.
    const file = join(dir, 'latchkey.db')
    const db = withWal(file)
    const wals = () => openFilesUnder(dir).filter((f) => f.endsWith('-wal'))
    expect(wals()).toHaveLength(1)
    const seen: Array<{ log: number; checkpointed: number }> = []
    const close = startCheckpoints(db, { intervalMs: 10, onCheckpoint: (frames) => seen.push(frames) })
    await vi.waitFor(() => expect(seen.some((f) => f.log > 1000 && f.checkpointed === f.log)).toBe(true))
    expect(wals()).toHaveLength(2)
    await Promise.all([close(), close()])
    expect(db.open).toBe(false)
    expect(openFilesUnder(dir)).toEqual([])
  })

  it('checkpoints on the main thread if the worker dies', async ({ dir }) => {
    // Scenario: a worker that throws as it starts → the checkpoints come back to this thread's timer: the database
    // file grows to hold the WAL once the thread yields.
    const file = join(dir, 'latchkey.db')
    const db = withWal(file)
    const before = statSync(file).size
    const close = startCheckpoints(db, {
      intervalMs: 10,
      workerSource: "throw new Error('the checkpointer failed to start')",
    })
    try {
      await vi.waitFor(() => expect(statSync(file).size).toBeGreaterThan(before + 1_000_000), { timeout: 10_000 })
    } finally {
      await close()
    }
    expect(openFilesUnder(dir)).toEqual([])
  })

  it('the store stops its checkpointer on close', async ({ dir }) => {
    // Scenario: a file-backed store with its checkpointer running, close() → no file of the database is open any
    // more in this process: neither the main connection's nor the worker's.
    const file = join(dir, 'latchkey.db')
    const store = createSqliteStore({ filename: file, newId, now: () => iso(Date.now()) })
    await store.settings.setIfAbsent('probe', 'value')
    await vi.waitFor(() => expect(openFilesUnder(dir).filter((f) => f.endsWith('-wal'))).toHaveLength(2))
    await store.close()
    expect(openFilesUnder(dir)).toEqual([])
  })

  it('starts the WAL over under commits that never pause, without the main connection checkpointing', async ({
    dir,
  }) => {
    // Scenario: the main thread commits back to back through the write queue (each commit ~100 pages), the main
    // connection's own checkpoints switched off → the WAL still starts over (a checkpoint finds it shorter than the
    // previous one did), because the checkpointer's last pass holds the commits off and leaves the whole WAL in the
    // database. Without the gate no pass ever finds the WAL whole, and it only grows.
    const file = join(dir, 'latchkey.db')
    const db = openDatabase(file, ['CREATE TABLE notes (text TEXT NOT NULL)'])
    // Commits held up to 250 ms rather than 5: on a loaded machine the last pass can be preempted for longer than
    // 5 ms, and then the commit that goes ahead leaves that checkpoint unfinished. What is tested is that a last pass
    // holding the commits leaves the whole WAL in the database, not how long one takes.
    const gate = new CommitGate(250)
    const writes = new WriteQueue(db, gate)
    const seen: Array<{ log: number; complete: boolean }> = []
    const close = startCheckpoints(db, { gate, intervalMs: 20, onCheckpoint: (frames) => seen.push(frames) })
    db.pragma('wal_autocheckpoint = 0')
    const insert = db.prepare('INSERT INTO notes (text) VALUES (?)')
    const restarted = () => seen.some((frames, i) => i > 0 && frames.log < (seen[i - 1] as { log: number }).log)
    try {
      const end = Date.now() + 20_000
      for (let i = 0; !restarted() && Date.now() < end; i++) {
        await writes.run(() => {
          for (let row = 0; row < 40; row++) insert.run(`${i}.${row}`.padEnd(500, '.'))
        })
      }
      // On failure, the last checkpoints say how far it got.
      expect(restarted(), JSON.stringify(seen.slice(-8))).toBe(true)
      expect(seen.some((frames) => frames.complete)).toBe(true)
    } finally {
      writes.close()
      await close()
    }
  })

  it('checkpoints sooner the faster the WAL grows, and once per interval when idle', () => {
    const limits = { intervalMs: 1000, minIntervalMs: 50, targetFrames: 8192 }
    // Nothing committed since the last checkpoint: the whole interval.
    expect(nextCheckpointDelay(0, 1000, limits)).toBe(1000)
    // 16,384 frames in the last second: half a second to the next 8,192.
    expect(nextCheckpointDelay(16_384, 1000, limits)).toBe(500)
    // Slower than the target per interval: the interval; far faster: the floor.
    expect(nextCheckpointDelay(100, 1000, limits)).toBe(1000)
    expect(nextCheckpointDelay(1_000_000, 1000, limits)).toBe(50)
  })

  it('an idle database is checkpointed once per interval, its WAL finished', async ({ dir }) => {
    // Scenario: ~1 MiB in the WAL, then no commit at all → after the first checkpoint finishes the WAL, each next one
    // is due a whole interval later (not the 50 ms of a WAL left unfinished).
    const file = join(dir, 'latchkey.db')
    const db = withWal(file)
    const gate = new CommitGate()
    const seen: Array<{ complete: boolean; nextMs: number }> = []
    const close = startCheckpoints(db, { gate, intervalMs: 200, onCheckpoint: (frames) => seen.push(frames) })
    try {
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(3), { timeout: 10_000 })
      expect(seen.slice(1, 3)).toEqual([
        expect.objectContaining({ complete: true, nextMs: 200 }),
        expect.objectContaining({ complete: true, nextMs: 200 }),
      ])
    } finally {
      await close()
    }
  })

  it('opens the commit gate for good if the checkpointer ends while holding it', async ({ dir }) => {
    // Scenario: a worker that takes the gate and then throws → once it is gone the gate is open: a commit enters.
    const file = join(dir, 'latchkey.db')
    const db = withWal(file)
    const gate = new CommitGate()
    const close = startCheckpoints(db, {
      gate,
      intervalMs: 10,
      workerSource: `
        const cells = new Int32Array(require('node:worker_threads').workerData.gate)
        Atomics.store(cells, 0, 2)
        throw new Error('the checkpointer failed holding the gate')`,
    })
    try {
      await vi.waitFor(() => expect(gate.enter()).toBe(true), { timeout: 10_000 })
      gate.leave()
    } finally {
      await close()
    }
  })

  it('an in-memory database has no checkpointer', async () => {
    const db = openDatabase(':memory:', [])
    const close = startCheckpoints(db, { onCheckpoint: () => expect.unreachable() })
    await close()
    expect(db.open).toBe(false)
  })
})
