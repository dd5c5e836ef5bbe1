import { Agent } from 'node:http'
import { join } from 'node:path'
import { fdLimit, memoryOf, openFds } from '../lib/children.js'
import { countOnline, lockProcesses, provision } from '../lib/fleet.js'
import { metric, startLatchkeyChild } from '../lib/latchkey-child.js'
import type { BenchOptions } from '../lib/options.js'
import { pollUntil, round, sleep } from '../lib/stats.js'

/**
 * Connection scale: N locks (in lock processes of their own) connect to a fresh latchkey; how long until the broker
 * holds them all, how long until latchkey reports every one online (its orchestrator has committed each lock's
 * `status` and `state`), and latchkey's resident memory. N is clamped to what the open-file limit allows, since
 * latchkey holds one socket per lock.
 */

export interface ScaleResult {
  requested: number
  locks: number
  clamped_by?: string
  fd_limit: number
  provision_s: number
  provision_per_s: number
  lock_processes: number
  /** Every lock connected and online within the time limit. */
  complete: boolean
  time_limit_s: number
  /** Locks the broker holds at the end (or when all were in). */
  connected: number
  /** From `start` until the broker's connected-clients gauge counts every lock; null if not within the limit. */
  connected_s: number | null
  /** From `start` until latchkey has handled every lock's status and state (confirmed through /devices/list). */
  online_s: number | null
  online_per_s: number | null
  /** Lowest RSS over the settle window before the locks connect (devices provisioned). */
  rss_before_mb: number
  /** Lowest RSS over the settle window once every lock is online and idle. */
  rss_mb: number
  peak_rss_mb: number
  /** (rss_mb − rss_before_mb) / locks connected: what an idle connected lock costs. */
  rss_per_lock_kb: number
  /** RSS the moment the last lock came online, and per lock from it: the connect storm's garbage not yet returned. */
  rss_at_online_mb: number
  rss_per_lock_at_online_kb: number
  /** How long each RSS reading waited for the process to settle (V8 returns freed heap only after some idle time). */
  settle_s: number
  start_failures: number | null
  /** [seconds since start, locks connected, device messages taken up] about every 5 s: the shape of the curve. */
  progress: Array<[number, number, number]>
}

/** Sockets and files latchkey needs besides the locks' sockets: its listeners, SQLite, the bench's HTTP, slack. */
const FD_RESERVE = 100
const LOCKS_PER_PROCESS = 10_000

/**
 * The lowest RSS of a process left alone for `windowMs`. After a burst (provisioning, a connect storm) V8 keeps the
 * heap it grew until its memory reducer runs, tens of seconds into idleness; an idle lock's cost is measured after.
 */
async function settledRss(pid: number, windowMs: number): Promise<number> {
  let lowest = memoryOf(pid).rss_mb
  for (let waited = 0; waited < windowMs; waited += 1000) {
    await sleep(1000)
    lowest = Math.min(lowest, memoryOf(pid).rss_mb)
  }
  return lowest
}

export async function connectionScale(options: BenchOptions): Promise<ScaleResult> {
  const lk = await startLatchkeyChild({
    ...(options.cpuProfDir ? { cpuProfDir: join(options.cpuProfDir, 'scale') } : {}),
    ...(options.serverFlags ? { serverFlags: options.serverFlags } : {}),
  })
  const locksPerProcess = Math.min(LOCKS_PER_PROCESS, fdLimit() - FD_RESERVE)
  const agent = new Agent({ keepAlive: true, maxSockets: 2 })
  try {
    const limit = fdLimit()
    const room = limit - openFds(lk.pid) - FD_RESERVE
    const n = Math.min(options.scaleLocks, room)
    const clampedBy =
      n < options.scaleLocks
        ? `open-file limit ${limit} (ulimit -n; the hard limit here, not raisable without CAP_SYS_RESOURCE)`
        : undefined
    const provisioned = await provision(lk, n, 64)
    const locks = await lockProcesses(provisioned.credentials, lk.mqttUrl, locksPerProcess)
    try {
      const settleMs = options.quick ? 2_000 : 60_000
      const rssBefore = await settledRss(lk.pid, settleMs)
      const timeLimitMs = options.quick ? 60_000 : 300_000
      const t0 = performance.now()
      let startReport: { failures: number } | undefined
      const started = locks.start().then(
        (report) => (startReport = report),
        () => undefined,
      )
      const progress: Array<[number, number, number]> = []
      let connected = 0
      let connectedAt: number | undefined
      let lastSample = -Infinity
      // With the embedded broker latchkey has no MQTT client of its own; each lock sends `status` and `state`.
      const handledAt = await pollUntil(
        async () => {
          connected = await metric(agent, lk, 'latchkey_mqtt_connected_clients')
          const handled = await metric(agent, lk, 'latchkey_mqtt_messages_received_total')
          const now = performance.now()
          if (connected >= n) connectedAt ??= now
          if (now - lastSample >= 5_000) {
            lastSample = now
            progress.push([round((now - t0) / 1000, 1), connected, handled])
          }
          return connectedAt !== undefined && handled >= 2 * n ? now : undefined
        },
        timeLimitMs,
        250,
      )
      // The counter moves when a message is taken up; /devices/list shows it committed.
      const online =
        handledAt === undefined
          ? undefined
          : await pollUntil(async () => ((await countOnline(lk)) >= n ? true : undefined), 30_000, 250)
      const complete = online === true
      // Every lock is in: their processes' own reports are a moment away.
      if (complete) await Promise.race([started, sleep(10_000)])
      const atOnline = memoryOf(lk.pid)
      const rssIdle = complete ? await settledRss(lk.pid, settleMs) : atOnline.rss_mb
      const after = memoryOf(lk.pid)
      const perLock = (mb: number) => round(((mb - rssBefore) * 1024) / Math.max(1, connected), 1)
      const seconds = (at: number | undefined) => (at === undefined ? null : round((at - t0) / 1000, 2))
      return {
        requested: options.scaleLocks,
        locks: n,
        ...(clampedBy ? { clamped_by: clampedBy } : {}),
        fd_limit: limit,
        provision_s: round(provisioned.ms / 1000, 2),
        provision_per_s: round((n * 1000) / provisioned.ms, 0),
        lock_processes: locks.children.length,
        complete,
        time_limit_s: timeLimitMs / 1000,
        connected,
        connected_s: seconds(connectedAt),
        online_s: complete ? seconds(handledAt) : null,
        online_per_s: complete && handledAt !== undefined ? round((n * 1000) / (handledAt - t0), 0) : null,
        rss_before_mb: rssBefore,
        rss_mb: rssIdle,
        peak_rss_mb: after.peak_rss_mb,
        rss_per_lock_kb: perLock(rssIdle),
        rss_at_online_mb: atOnline.rss_mb,
        rss_per_lock_at_online_kb: perLock(atOnline.rss_mb),
        settle_s: settleMs / 1000,
        start_failures: startReport?.failures ?? null,
        progress,
      }
    } finally {
      // latchkey first: the locks then have nobody to announce `offline` to, and are killed.
      await lk.stop()
      await locks.kill()
    }
  } finally {
    agent.destroy()
    await lk.stop()
  }
}
