import { cpuMs, diskWriteBytes } from './children.js'
import { round, summarize, type LatencySummary } from './stats.js'

/**
 * Closed loop: `concurrency` workers, each starting its next operation as soon as the previous one finished, for
 * warm-up + duration (bounded: it stops by itself). Only operations started after the warm-up are sampled, and the
 * rate is the successful completions inside the measured window over its length.
 */

export interface LoopSpec {
  concurrency: number
  durationMs: number
  warmupMs: number
  /**
   * One operation: resolves true on success (its latency is the loop's own clock), a number on success with the
   * latency it measured itself (e.g. at a receiver), or false / an error text (or throws) on failure.
   */
  op: (slot: number, i: number) => Promise<boolean | number | string>
  /**
   * Processes whose CPU use over the measured window is reported, by label (this process is always `bench`): a pid,
   * or a function listing a group's pids (e.g. a PostgreSQL server's processes), summed, read at each end.
   */
  cpuOf?: Record<string, number | (() => number[])>
  /** Reads latchkey's garbage-collection totals; what the measured window adds is reported per operation. */
  gcOf?: () => Promise<GcTotals>
}

/** Garbage collections by kind (`minor`, `major`, …): how many, and the time they took in all. */
export type GcTotals = Record<string, { count: number; ms: number }>

export interface LoopResult {
  concurrency: number
  duration_s: number
  ops: number
  per_s: number
  errors: number
  latency: LatencySummary
  first_error?: string
  /** CPU used over the measured window, in % of one core, by process label. */
  cpu_pct: Record<string, number>
  /** The kernel's (system) part of it: syscalls, loopback TCP, file writes. */
  cpu_sys_pct: Record<string, number>
  /** CPU ms per successful operation, by process label. */
  cpu_ms_per_op: Record<string, number>
  /** KiB written to storage (SQLite WAL and checkpoints) per successful operation, by process label. */
  disk_kb_per_op: Record<string, number>
  /** latchkey's garbage collections in the measured window, by kind: per 1,000 operations, and µs per operation. */
  gc?: Record<string, { per_1000_ops: number; us_per_op: number }>
}

export async function runClosedLoop(spec: LoopSpec): Promise<LoopResult> {
  const measureFrom = performance.now() + spec.warmupMs
  const end = measureFrom + spec.durationMs
  const samples: number[] = []
  let completedInWindow = 0
  let errors = 0
  let firstError: string | undefined

  const pids: Record<string, number | (() => number[])> = { bench: process.pid, ...spec.cpuOf }
  const readCpu = () =>
    Object.fromEntries(
      Object.entries(pids).map(([label, pid]) => [label, typeof pid === 'number' ? safeCpu(pid) : groupCpu(pid())]),
    )
  // A failed read of the GC totals leaves the level without GC figures; it is awaited only at the end.
  const readGc = () => spec.gcOf?.().catch(() => undefined)
  let cpuStart: Record<string, Usage> = {}
  let cpuEnd: Record<string, Usage> = {}
  let gcStart: Promise<GcTotals | undefined> | undefined
  let gcEnd: Promise<GcTotals | undefined> | undefined
  const startTimer = setTimeout(() => ([cpuStart, gcStart] = [readCpu(), readGc()]), spec.warmupMs)
  const endTimer = setTimeout(() => ([cpuEnd, gcEnd] = [readCpu(), readGc()]), spec.warmupMs + spec.durationMs)

  const worker = async (slot: number): Promise<void> => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now()
      let outcome: boolean | number | string
      try {
        outcome = await spec.op(slot, i)
      } catch (error) {
        outcome = error instanceof Error ? error.message : String(error)
      }
      const t1 = performance.now()
      const good = outcome === true || typeof outcome === 'number'
      if (!good) firstError ??= typeof outcome === 'string' ? outcome : 'failed'
      if (t0 < measureFrom) continue
      if (!good) {
        errors++
        continue
      }
      samples.push(typeof outcome === 'number' ? outcome : t1 - t0)
      if (t1 <= end) completedInWindow++
    }
  }
  await Promise.all(Array.from({ length: spec.concurrency }, (_, slot) => worker(slot)))
  clearTimeout(startTimer)
  clearTimeout(endTimer)
  // The last worker may finish a hair before the end timer fires.
  if (Object.keys(cpuEnd).length === 0) [cpuEnd, gcEnd] = [readCpu(), readGc()]
  const [gcFrom, gcTo] = [await gcStart, await gcEnd]
  const gc = gcFrom && gcTo ? gcPerOp(gcFrom, gcTo, completedInWindow) : undefined
  const cpuPct: Record<string, number> = {}
  const cpuSysPct: Record<string, number> = {}
  const cpuPerOp: Record<string, number> = {}
  const diskPerOp: Record<string, number> = {}
  for (const label of Object.keys(pids)) {
    const [a, b] = [cpuStart[label] ?? ZERO, cpuEnd[label] ?? ZERO]
    const used = b.user + b.sys - a.user - a.sys
    cpuPct[label] = round((100 * used) / spec.durationMs, 0)
    cpuSysPct[label] = round((100 * (b.sys - a.sys)) / spec.durationMs, 0)
    cpuPerOp[label] = round(used / Math.max(1, completedInWindow), 3)
    diskPerOp[label] = round((b.disk - a.disk) / 1024 / Math.max(1, completedInWindow), 1)
  }
  return {
    concurrency: spec.concurrency,
    duration_s: round(spec.durationMs / 1000, 2),
    ops: samples.length,
    per_s: round((completedInWindow * 1000) / spec.durationMs, 0),
    errors,
    latency: summarize(samples),
    ...(firstError && errors > 0 ? { first_error: firstError } : {}),
    cpu_pct: cpuPct,
    cpu_sys_pct: cpuSysPct,
    cpu_ms_per_op: cpuPerOp,
    disk_kb_per_op: diskPerOp,
    ...(gc ? { gc } : {}),
  }
}

function gcPerOp(start: GcTotals, end: GcTotals, ops: number): NonNullable<LoopResult['gc']> {
  const n = Math.max(1, ops)
  return Object.fromEntries(
    Object.entries(end).map(([kind, { count, ms }]) => {
      const before = start[kind] ?? { count: 0, ms: 0 }
      return [
        kind,
        {
          per_1000_ops: round(((count - before.count) * 1000) / n, 2),
          us_per_op: round(((ms - before.ms) * 1000) / n, 2),
        },
      ]
    }),
  )
}

interface Usage {
  user: number
  sys: number
  disk: number
}
const ZERO: Usage = { user: 0, sys: 0, disk: 0 }

/** A group's use, summed over the processes alive at the time of reading. */
function groupCpu(pids: number[]): Usage {
  const sum = { ...ZERO }
  for (const pid of pids) {
    const usage = safeCpu(pid)
    sum.user += usage.user
    sum.sys += usage.sys
    sum.disk += usage.disk
  }
  return sum
}

function safeCpu(pid: number): Usage {
  try {
    return { ...cpuMs(pid), disk: diskWriteBytes(pid) }
  } catch {
    return ZERO
  }
}
