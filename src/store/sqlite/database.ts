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
 * Page cache of the connection, in KiB: SQLite's own default, where better-sqlite3 builds SQLite with 16,000 KiB.
 * Every commit ends by dropping the cached pages past the end of the file, and when a b-tree balance in it renumbered
 * pages (it sorts its new pages through a spare page number, the lock page at 1 GiB), SQLite finds those by walking
 * its whole cache: at 512-byte pages, 16 MB is 25,000 pages, about 0.4 ms per commit. 2 MB still holds what lock
 * commands and deliveries touch (under the benchmark's load one page in twelve attempts is read back from the file at
 * 100 in flight, none at 1) and is walked in an eighth of the time (docs/performance.md#a-smaller-page-cache).
 */
export const CACHE_SIZE_KIB = 2_000

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
  db.pragma(`cache_size = -${CACHE_SIZE_KIB}`)
  migrate(db, migrations)
  return db
}

/**
 * Pages of WAL after which a commit checkpoints by itself (8 MiB at 512-byte pages, 16 MiB at 1 KiB, 64 MiB at 4 KiB):
 * a backstop, which the checkpointer below keeps the WAL well short of. Reaching it costs the commit that does a
 * checkpoint on the main thread, fsyncs included: 5–15 ms on the reference machine
 * (docs/performance.md#the-wal-that-never-started-over).
 */
const AUTOCHECKPOINT_PAGES = 16_384
/** How often, at the least, the WAL is copied into the database, off any request's commit. */
export const CHECKPOINT_INTERVAL_MS = 1_000
/**
 * WAL frames (pages) one checkpoint should find, at most: under sustained commits the checkpointer runs as often as
 * that takes (half the backstop; 4 MiB at 512-byte pages), down to every {@link CHECKPOINT_MIN_INTERVAL_MS}.
 */
export const CHECKPOINT_TARGET_FRAMES = 8_192
export const CHECKPOINT_MIN_INTERVAL_MS = 50
/**
 * The longest a commit waits for the checkpointer's last pass (see {@link CommitGate}); past it, it commits anyway and
 * that checkpoint just does not finish the WAL.
 */
export const COMMIT_GATE_MAX_WAIT_MS = 5

/**
 * When the next checkpoint runs: `added` frames were committed in the `elapsedMs` since the previous one. As long as
 * frames come at that rate, the next checkpoint finds about `targetFrames`; with nothing committed, it waits the whole
 * interval. (The worker below runs a copy of it.)
 */
export function nextCheckpointDelay(
  added: number,
  elapsedMs: number,
  limits: { intervalMs: number; minIntervalMs: number; targetFrames: number },
): number {
  if (added <= 0) return limits.intervalMs
  const delay = (limits.targetFrames * Math.max(1, elapsedMs)) / added
  return Math.round(Math.min(limits.intervalMs, Math.max(limits.minIntervalMs, delay)))
}

/** The cells of a {@link CommitGate}: who holds it, and whether the main thread waits for it. */
const GATE_STATE = 0
const GATE_WAITING = 1
const GATE_OPEN = 0
const GATE_COMMITTING = 1
const GATE_CHECKPOINTING = 2

/**
 * Keeps the write queue's commits and the checkpointer's last pass apart, through memory both threads share; neither
 * thread ever blocks on it. A WAL starts over from its beginning only at a commit that finds all of it copied into the
 * database, and a PASSIVE checkpoint copies only what was committed when it began: under sustained commits one always
 * lands during the copy, so the WAL would grow until the backstop's checkpoint on the main thread. So the checkpointer
 * copies the bulk of the WAL while commits go on, then takes the gate for one last short pass, during which the queue
 * holds its commits (the event loop runs on); the next commit then starts the WAL over. The gate decides no
 * correctness: a commit made while the checkpointer holds it (see {@link COMMIT_GATE_MAX_WAIT_MS}) only keeps that
 * checkpoint from finishing the WAL.
 */
export class CommitGate {
  readonly buffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)

  /** @param maxWaitMs How long a commit waits for the gate at most; then it goes ahead. */
  constructor(readonly maxWaitMs = COMMIT_GATE_MAX_WAIT_MS) {}

  private readonly cells = new Int32Array(this.buffer)
  private readonly waiters: Array<() => void> = []

  /** Before a commit: false while the checkpointer holds the gate, and then {@link onOpen}'s callbacks run once it opens. */
  enter(): boolean {
    const { cells } = this
    if (Atomics.compareExchange(cells, GATE_STATE, GATE_OPEN, GATE_COMMITTING) === GATE_OPEN) return true
    Atomics.store(cells, GATE_WAITING, 1)
    // Let go of meanwhile: then this thread may find the flag set, and gets one message too many, which is harmless.
    if (Atomics.compareExchange(cells, GATE_STATE, GATE_OPEN, GATE_COMMITTING) !== GATE_OPEN) return false
    Atomics.store(cells, GATE_WAITING, 0)
    return true
  }

  /** After the commit (or its rollback). Wakes the checkpointer if it waits for the gate. */
  leave(): void {
    if (Atomics.compareExchange(this.cells, GATE_STATE, GATE_COMMITTING, GATE_OPEN) === GATE_COMMITTING)
      Atomics.notify(this.cells, GATE_STATE)
  }

  /** Runs `fn` once the checkpointer opens the gate (or on {@link opened}). */
  onOpen(fn: () => void): void {
    this.waiters.push(fn)
  }

  /** The checkpointer opened the gate (it says so by message), or is gone: runs what waited for it. */
  opened(): void {
    if (Atomics.load(this.cells, GATE_STATE) === GATE_CHECKPOINTING) return
    for (const fn of this.waiters.splice(0)) fn()
  }

  /** The checkpointer is gone: the gate is open for good. */
  reset(): void {
    Atomics.store(this.cells, GATE_STATE, GATE_OPEN)
    this.opened()
  }
}

/**
 * The checkpointer's own thread: one connection to the same file and a PASSIVE checkpoint at least once per interval,
 * and more often when the WAL grows fast, so that it starts over long before the backstop. Under load the main thread
 * commits while it copies, and SQLite then skips two things: syncing the database file (it does only when it copied
 * the whole WAL), and the WAL's restart from its beginning (the next commit does that only when the whole WAL is in the
 * database). So the worker syncs the file itself, through a descriptor the main thread opened (the bulk of a
 * checkpoint's cost), runs a few short passes over what was committed meanwhile, and then a last one holding the
 * commit gate, which copies the rest and leaves the whole WAL in the database.
 */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { fdatasyncSync } = require('node:fs')
const Database = require(workerData.driver)
const nextCheckpointDelay = ${nextCheckpointDelay.toString()}
const db = new Database(workerData.filename, { fileMustExist: true })
db.pragma('synchronous = NORMAL')
db.pragma('wal_autocheckpoint = 0')
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
const gate = workerData.gate ? new Int32Array(workerData.gate) : undefined
function holdGate() {
  const end = Date.now() + workerData.gateWaitMs
  // Waits out a commit in progress (the main thread wakes this one as it leaves), not more than gateWaitMs.
  while (Atomics.compareExchange(gate, ${GATE_STATE}, ${GATE_OPEN}, ${GATE_CHECKPOINTING}) !== ${GATE_OPEN}) {
    if (Date.now() >= end) return false
    Atomics.wait(gate, ${GATE_STATE}, ${GATE_COMMITTING}, 1)
  }
  return true
}
function releaseGate() {
  Atomics.store(gate, ${GATE_STATE}, ${GATE_OPEN})
  if (Atomics.exchange(gate, ${GATE_WAITING}, 0) === 1) parentPort.postMessage('open')
}
let timer
let stopped = false
let lastLog = 0
let finished = false
let lastAt = Date.now()
function run() {
  let delay = workerData.intervalMs
  try {
    const started = Date.now()
    const [first] = checkpoint.all()
    if (first.checkpointed > 0) fdatasyncSync(workerData.syncFd)
    // Passes over what was committed during the previous one, until one finds little.
    let row = first
    let found = first.log
    for (let pass = 1; found > workerData.lastPassFrames && pass < workerData.passes && Date.now() - started < workerData.catchUpMs; pass++) {
      const before = row.log
      ;[row] = checkpoint.all()
      found = row.log - before
    }
    // An empty WAL has nothing to finish.
    let complete = row.log === 0
    // Little left to copy, or a WAL three quarters of the way to the backstop: the last pass, holding commits off.
    if (
      gate &&
      !complete &&
      (found <= workerData.lastPassFrames || row.log >= workerData.targetFrames * 1.5) &&
      holdGate()
    ) {
      try {
        ;[row] = checkpoint.all()
        complete = row.checkpointed === row.log
      } finally {
        releaseGate()
      }
    }
    // Frames committed since the last look. After a run that finished the WAL, the same size means nothing was
    // committed (the WAL starts over only at a commit); otherwise a WAL shorter than then has started over.
    const added = finished ? (first.log === lastLog ? 0 : first.log) : first.log >= lastLog ? first.log - lastLog : first.log
    // A WAL left unfinished (a commit came through anyway) is tried again soon.
    delay = gate && !complete ? workerData.minIntervalMs : nextCheckpointDelay(added, started - lastAt, workerData)
    lastLog = row.log
    finished = complete
    lastAt = Date.now()
    if (workerData.report) parentPort.postMessage({ log: first.log, checkpointed: first.checkpointed, complete, nextMs: delay })
  } catch {
    // Nothing lost: the next run, or the main connection's backstop, checkpoints instead.
  }
  if (!stopped) timer = setTimeout(run, delay)
}
timer = setTimeout(run, workerData.intervalMs)
parentPort.on('message', () => {
  stopped = true
  clearTimeout(timer)
  db.close()
  parentPort.close()
})
`

export interface CheckpointOptions {
  /** The longest wait between two checkpoints (the shortest is {@link CHECKPOINT_MIN_INTERVAL_MS}, or this if less). */
  intervalMs?: number
  /** WAL frames one checkpoint should find at most; {@link CHECKPOINT_TARGET_FRAMES} by default. */
  targetFrames?: number
  /** The write queue's gate (see {@link CommitGate}); without it the checkpointer's last pass does not hold commits. */
  gate?: CommitGate
  /**
   * Called after each checkpoint the worker ran, with the WAL's size and how much of it was in the database after its
   * first pass, whether its last pass (holding the gate) left the whole WAL in the database, and the wait until the
   * next checkpoint.
   */
  onCheckpoint?: (frames: { log: number; checkpointed: number; complete: boolean; nextMs: number }) => void
  /** The worker's code, for tests that need one that fails (CommonJS, run with `eval`). */
  workerSource?: string
}

/** Stops the checkpointer, then closes the database; resolves once the thread and both connections are gone. */
export type CloseDatabase = () => Promise<void>

/**
 * Checkpoints on a timer, in a worker thread with its own connection to the file, instead of inside whichever
 * commit crosses SQLite's default 1,000-page threshold: the commit that crosses it pays for copying the whole WAL,
 * and a page rewritten by many commits (an index's last leaf, a busy device's row) is copied once per checkpoint
 * instead of once per 4 MiB of WAL (docs/performance.md#fewer-bytes-per-attempt). On this thread the copy and its
 * fsyncs stalled every request of that moment for milliseconds to tens of milliseconds
 * (docs/performance.md#checkpoints-off-the-event-loop); WAL mode lets another connection checkpoint while this one
 * commits. PASSIVE: never waits for a reader or the writer. With the write queue's `gate`, each checkpoint ends by
 * leaving the whole WAL in the database, so that the next commit starts it over
 * (docs/performance.md#the-wal-that-never-started-over). The WAL file is truncated back to `journal_size_limit`
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
      minIntervalMs: Math.min(intervalMs, CHECKPOINT_MIN_INTERVAL_MS),
      targetFrames: options.targetFrames ?? CHECKPOINT_TARGET_FRAMES,
      syncFd,
      passes: 8,
      catchUpMs: 50,
      lastPassFrames: 256,
      gate: options.gate?.buffer,
      gateWaitMs: 20,
      report: options.onCheckpoint !== undefined,
      driver: require.resolve('better-sqlite3'),
    },
  })
  // Like a timer, the checkpointer alone does not keep the process alive.
  worker.unref()
  const { onCheckpoint, gate } = options
  worker.on('message', (message: 'open' | Parameters<NonNullable<typeof onCheckpoint>>[0]) => {
    if (message === 'open') gate?.opened()
    else onCheckpoint?.(message)
  })
  // An error is followed by 'exit'; the fallback starts there.
  worker.on('error', () => {})
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      // A thread that ended holding the gate opened it no more.
      gate?.reset()
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
  /** Set while a commit waits for the checkpointer's last pass ({@link CommitGate}). */
  private held: NodeJS.Timeout | undefined

  constructor(
    private readonly db: Db,
    private readonly gate?: CommitGate,
  ) {
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

  /**
   * Runs whatever is queued now; used by the timers and by close(). While the checkpointer's last pass holds the gate
   * the jobs wait, unless `force`d, and run when it opens, or after the gate's `maxWaitMs` at the latest.
   */
  flush(force = false): void {
    this.scheduled = false
    this.urgentScheduled = false
    const jobs = this.jobs
    if (jobs.length === 0) return
    const { gate } = this
    const entered = gate?.enter() ?? false
    if (gate && !entered && !force) return this.hold(gate)
    this.jobs = []
    try {
      this.commit(jobs)
    } finally {
      if (entered) gate?.leave()
    }
  }

  private hold(gate: CommitGate): void {
    if (this.held) return
    const resume = (force: boolean) => {
      if (!this.held) return
      clearTimeout(this.held)
      this.held = undefined
      this.flush(force)
    }
    this.held = setTimeout(() => resume(true), gate.maxWaitMs)
    gate.onOpen(() => resume(false))
  }

  private commit(jobs: Job[]): void {
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
    clearTimeout(this.held)
    this.held = undefined
    this.flush(true)
    this.closed = true
  }
}
