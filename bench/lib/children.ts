import { fork, spawn, type ChildProcess, type Serializable } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Every child process the bench starts goes through here, so that all of them are killed on every way out:
 * normal end, an exception, SIGINT/SIGTERM, or the watchdog.
 */

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const live = new Set<ChildProcess>()
/** Synchronous stops of what is not a child of ours (a daemonised PostgreSQL) or not tracked here (mosquitto). */
const cleanups = new Set<() => void>()

function track(child: ChildProcess): ChildProcess {
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

export function killAllNow(): void {
  for (const child of live) child.kill('SIGKILL')
  for (const cleanup of cleanups) {
    cleanups.delete(cleanup)
    try {
      cleanup()
    } catch (error) {
      console.error('bench: cleanup failed:', error instanceof Error ? error.message : error)
    }
  }
}

/**
 * Runs `cleanup` (synchronous) on every way out that `killAllNow` covers, unless the returned function is called
 * first, once the thing was stopped the ordinary way.
 */
export function atExit(cleanup: () => void): () => void {
  cleanups.add(cleanup)
  return () => cleanups.delete(cleanup)
}

let installed = false
export function installExitHandlers(): void {
  if (installed) return
  installed = true
  process.on('exit', killAllNow)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping every child process`)
      killAllNow()
      process.exit(130)
    })
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** A TypeScript helper process (run through tsx) with an IPC channel. */
export function forkTs(script: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  const child = fork(join(ROOT, script), args, {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', ...extraExecArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  return track(child)
}

/** A plain process; stdout and stderr are piped for the caller to read. */
export function spawnTracked(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return track(spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }))
}

export interface ChildMessage {
  type: string
  [key: string]: unknown
}

/** The next IPC message of the given type; rejects if the child exits first or after `timeoutMs`. */
export function nextMessage<T extends ChildMessage>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: Serializable) => {
      const m = message as ChildMessage
      if (m && m.type === 'error') finish(new Error(`child ${child.pid}: ${String(m.message)}`))
      else if (m && m.type === type) finish(undefined, m as T)
    }
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`child ${child.pid} exited (${code ?? signal}) before '${type}'`))
    const timer = setTimeout(
      () => finish(new Error(`child ${child.pid}: no '${type}' within ${timeoutMs} ms`)),
      timeoutMs,
    )
    function finish(error?: Error, value?: T): void {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error) reject(error)
      else resolve(value as T)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

export async function request<T extends ChildMessage>(
  child: ChildProcess,
  message: ChildMessage,
  replyType: string,
  timeoutMs = 60_000,
): Promise<T> {
  const reply = nextMessage<T>(child, replyType, timeoutMs)
  child.send(message)
  return reply
}

/** Resident set size and its peak, in MiB, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rss_mb: number; peak_rss_mb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
  return { rss_mb: Math.round(kb('VmRSS') / 1024), peak_rss_mb: Math.round(kb('VmHWM') / 1024) }
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** The soft limit on open files every child inherits (`ulimit -n`). */
export function fdLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const match = /^Max open files\s+(\d+)/m.exec(limits)
  return match ? Number(match[1]) : 1024
}

/** Bytes a process has caused to be written to storage so far (/proc/<pid>/io write_bytes; page-cache writes count). */
export function diskWriteBytes(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8')
  return Number(/^write_bytes: (\d+)/m.exec(io)?.[1] ?? 0)
}

/** CPU time a process has used so far, in ms (user, system), from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuMs(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 }
}
