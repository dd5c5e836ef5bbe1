import Database from 'better-sqlite3'
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { Worker } from 'node:worker_threads'
import { MIGRATIONS } from './migrations.js'

export type Db = Database.Database

const require = createRequire(import.meta.url)

/**
 * Page size of a new database: SQLite's smallest. Every commit writes each page it changed to the WAL whole, so the
 * page size is the unit of bytes written per change: 512-byte pages write about 36 % less than 1 KiB pages per lock
 * command, and 1 KiB pages a third of 4 KiB pages (docs/performance.md#pages-per-attempt-at-1-in-flight-by-b-tree),
 * for flash storage that wears with every write. The price: rows longer than 477 bytes (an attempt with its history,
 * an event, a delivery attempt with its response) continue on an overflow page, and the file is about a quarter larger.
 */
export const PAGE_SIZE = 512

/**
 * Opens (creating if needed) a WAL database and brings its schema up to date.
 * `synchronous = NORMAL` in WAL mode survives a process crash (SIGKILL) without losing a committed transaction;
 * only a power loss can roll back the last commits. See docs/operations.md.
 */
export function openDatabase(filename: string, migrations: readonly string[] = MIGRATIONS): Db {
  if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true })
  const db = new Database(filename)
  // Webhook secrets must be readable to sign with: the file is the owner's alone.
  if (filename !== ':memory:') chmodSync(filename, 0o600)
  // Only a new, empty database takes it (an existing file keeps its page size until a VACUUM).
  db.pragma(`page_size = ${PAGE_SIZE}`)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  migrate(db, migrations)
  return db
}

/**
 * Pages of WAL after which a commit checkpoints by itself (8 MiB at 512-byte pages, 16 MiB at 1 KiB, 64 MiB at 4 KiB): a backstop, the
 * checkpointer below normally runs long before.
 */
const AUTOCHECKPOINT_PAGES = 16_384
/** How often the WAL is copied into the database, off any request's commit. */
export const CHECKPOINT_INTERVAL_MS = 1_000

/**
 * The checkpointer's own thread: one connection to the same file and, once per interval, a PASSIVE checkpoint. Under
 * load the main thread commits while it copies, and SQLite then skips two things: syncing the database file (it does
 * only when it copied the whole WAL), and the WAL's restart from its beginning (the next commit does that only when
 * the whole WAL is in the database). So the worker syncs the file itself, through a descriptor the main thread
 * opened (the bulk of a checkpoint's cost), then runs a few short passes over what was committed meanwhile, which
 * end with the whole WAL copied whenever no commit falls inside one. Should none manage, the WAL grows until the
 * main connection's backstop, a small checkpoint by then.
 */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { fdatasyncSync } = require('node:fs')
const Database = require(workerData.driver)
const db = new Database(workerData.filename, { fileMustExist: true })
db.pragma('synchronous = NORMAL')
db.pragma('wal_autocheckpoint = 0')
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
const timer = setInterval(() => {
  try {
    const started = Date.now()
    const [first] = checkpoint.all()
    if (first.checkpointed > 0) fdatasyncSync(workerData.syncFd)
    let row = first
    for (let pass = 1, last = -1; row.log !== last && pass < workerData.passes && Date.now() - started < workerData.catchUpMs; pass++) {
      last = row.log
      ;[row] = checkpoint.all()
    }
    if (workerData.report) parentPort.postMessage({ log: first.log, checkpointed: first.checkpointed })
  } catch {
    // Nothing lost: the next interval, or the main connection's backstop, checkpoints instead.
  }
}, workerData.intervalMs)
parentPort.on('message', () => {
  clearInterval(timer)
  db.close()
  parentPort.close()
})
`

export interface CheckpointOptions {
  intervalMs?: number
  /** Called after each checkpoint the worker ran, with the WAL's size and how much of it is now in the database. */
  onCheckpoint?: (frames: { log: number; checkpointed: number }) => void
  /** The worker's code, for tests that need one that fails (CommonJS, run with `eval`). */
  workerSource?: string
}

/** Stops the checkpointer, then closes the database; resolves once the thread and both connections are gone. */
export type CloseDatabase = () => Promise<void>

/**
 * Checkpoints on a timer, in a worker thread with its own connection to the file, instead of inside whichever
 * commit crosses SQLite's default 1,000-page threshold: the commit that crosses it pays for copying the whole WAL,
 * and a page rewritten by many commits (an index's last leaf, a busy device's row) is copied once per interval
 * instead of once per 4 MiB of WAL (docs/performance.md#fewer-bytes-per-attempt). On this thread the copy and its
 * fsyncs stalled every request of that moment for milliseconds to tens of milliseconds
 * (docs/performance.md#checkpoints-off-the-event-loop); WAL mode lets another connection checkpoint while this one
 * commits. PASSIVE: never waits for a reader or the writer. The WAL file is truncated back to `journal_size_limit`
 * when this connection restarts it after a complete checkpoint. Should the worker die, the checkpoints come back to
 * this thread's timer.
 *
 * Returns the function that closes `db`: the descriptor the worker syncs through must outlive every connection to
 * the file in this process, because closing any descriptor of a file drops the process's POSIX locks on it, SQLite's
 * included.
 */
export function startCheckpoints(db: Db, options: CheckpointOptions = {}): CloseDatabase {
  if (db.memory) return async () => void db.close()
  const intervalMs = options.intervalMs ?? CHECKPOINT_INTERVAL_MS
  db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`)
  db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`)
  const syncFd = openSync(db.name, 'r')
  let fallback: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined
  const worker = new Worker(options.workerSource ?? CHECKPOINT_WORKER, {
    eval: true,
    workerData: {
      filename: db.name,
      intervalMs,
      syncFd,
      passes: 4,
      catchUpMs: 20,
      report: options.onCheckpoint !== undefined,
      driver: require.resolve('better-sqlite3'),
    },
  })
  // Like a timer, the checkpointer alone does not keep the process alive.
  worker.unref()
  if (options.onCheckpoint) worker.on('message', options.onCheckpoint)
  // An error is followed by 'exit'; the fallback starts there.
  worker.on('error', () => {})
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      resolve()
      if (!closing) fallback = checkpointOnThisThread(db, intervalMs)
    })
  })
  const close = async () => {
    clearInterval(fallback)
    // Held until the thread is gone: the main connection closes after it.
    worker.ref()
    worker.postMessage('stop')
    // A worker stuck in a checkpoint longer than this is ended; its connection closes with the thread.
    const timer = setTimeout(() => void worker.terminate(), 5_000)
    await exited
    clearTimeout(timer)
    clearInterval(fallback)
    db.close()
    closeSync(syncFd)
  }
  return () => (closing ??= close())
}

/** The fallback: the same PASSIVE checkpoint on this thread's timer. */
function checkpointOnThisThread(db: Db, intervalMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    try {
      if (db.open) db.pragma('wal_checkpoint(PASSIVE)')
    } catch {
      // Nothing lost: the next interval, or the backstop, checkpoints instead.
    }
  }, intervalMs)
  timer.unref()
  return timer
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number
}

function migrate(db: Db, migrations: readonly string[]): void {
  const current = schemaVersion(db)
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this latchkey (${migrations.length})`)
  }
  for (let version = current; version < migrations.length; version++) {
    const sql = migrations[version] as string
    db.transaction(() => {
      db.exec(sql)
      db.pragma(`user_version = ${version + 1}`)
    })()
  }
}

interface Job {
  fn: () => unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** A write job runs synchronously inside the transaction; a promise would resolve after the commit. */
function settle(value: unknown): unknown {
  if (value && typeof (value as { then?: unknown }).then === 'function') {
    throw new TypeError('Transaction function cannot return a promise')
  }
  return value
}

/**
 * Group commit: every write requested during one event-loop turn runs in one transaction, each job in its own
 * savepoint so that one failing job rolls back alone. Promises resolve only after the commit. A commit per write
 * caps at ~13k/s on these machines; grouped writes reach ~120k/s (docs/operations.md#group-commit).
 */
export class WriteQueue {
  private jobs: Job[] = []
  private scheduled = false
  private urgentScheduled = false
  private closed = false
  /**
   * The transaction's statements, prepared once: better-sqlite3's `db.transaction(fn)` builds four wrapper functions
   * per call, which per job was a twentieth of the process's CPU at 100 in flight
   * (docs/performance.md#less-cpu-per-attempt-on-sqlite).
   */
  private readonly tx

  constructor(private readonly db: Db) {
    this.tx = {
      begin: db.prepare('BEGIN'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT job'),
      release: db.prepare('RELEASE job'),
      rollbackTo: db.prepare('ROLLBACK TO job'),
    }
  }

  /** Queues a write; `urgent` commits it (with everything queued so far) when the current task ends. */
  run<T>(fn: () => T, urgent = false): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'))
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ fn, resolve: resolve as (value: unknown) => void, reject })
      if (urgent && !this.urgentScheduled) {
        this.urgentScheduled = true
        queueMicrotask(() => this.flush())
      } else if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Runs whatever is queued now; used by the timers and by close(). */
  flush(): void {
    this.scheduled = false
    this.urgentScheduled = false
    const jobs = this.jobs
    if (jobs.length === 0) return
    this.jobs = []
    const outcomes: Array<{ ok: boolean; value: unknown }> = []
    const { db, tx } = this
    try {
      tx.begin.run()
      try {
        // A lone job needs no savepoint: if it fails, the whole transaction rolls back and it alone is rejected.
        if (jobs.length === 1) outcomes.push({ ok: true, value: settle((jobs[0] as Job).fn()) })
        else for (const job of jobs) outcomes.push(this.runJob(job))
        tx.commit.run()
      } catch (error) {
        if (db.inTransaction) tx.rollback.run()
        throw error
      }
    } catch (error) {
      for (const job of jobs) job.reject(error)
      return
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown }
      if (outcome.ok) job.resolve(outcome.value)
      else job.reject(outcome.value)
    })
  }

  /** One job in its own savepoint: a failing job rolls back alone. */
  private runJob(job: Job): { ok: boolean; value: unknown } {
    const { db, tx } = this
    tx.savepoint.run()
    try {
      const value = settle(job.fn())
      tx.release.run()
      return { ok: true, value }
    } catch (error) {
      // SQLite rolled the whole transaction back by itself (a full disk, say): every job in it is lost.
      if (!db.inTransaction) throw error
      tx.rollbackTo.run()
      tx.release.run()
      return { ok: false, value: error }
    }
  }

  close(): void {
    this.flush()
    this.closed = true
  }
}
