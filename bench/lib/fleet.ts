import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mapLimit, writeCredentialsFile, type DeviceCredentials } from '../../simulator/index.js'
import { forkTs, nextMessage, request, stopChild } from './children.js'
import { postJson } from './http.js'
import type { LatchkeyChild } from './latchkey-child.js'

/** Provisioning devices through the Connect API, and the lock processes that bring them online. */

interface CreateReply {
  device: { device_id: string }
  mqtt_credentials: { url: string; password: string }
}

/** Creates `count` devices with at most `concurrency` requests in flight; returns their credentials. */
export async function provision(
  lk: LatchkeyChild,
  count: number,
  concurrency: number,
): Promise<{ credentials: DeviceCredentials[]; ms: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const t0 = performance.now()
  try {
    const credentials = await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      concurrency,
      async (i) => {
        const reply = await postJson<CreateReply>(
          agent,
          lk.httpUrl,
          '/devices/create',
          { name: `bench-lock-${i + 1}` },
          lk.apiKey,
        )
        return {
          device_id: reply.device.device_id,
          url: reply.mqtt_credentials.url,
          password: reply.mqtt_credentials.password,
        }
      },
    )
    return { credentials, ms: performance.now() - t0 }
  } finally {
    agent.destroy()
  }
}

export interface LockProcesses {
  children: ChildProcess[]
  /** Connects every lock; resolves when each process reports its fleet started. */
  start(): Promise<{ ms: number; failures: number; firstFailure?: string }>
  counters(): Promise<Array<Record<string, unknown>>>
  /** Kills the processes at once (no clean `offline` publish: the measurement is over). */
  kill(): Promise<void>
  /** Clean stop: each lock publishes `offline` and disconnects. */
  stop(): Promise<void>
}

/**
 * Forks ceil(n / perProcess) lock processes, each a simulator Fleet reading its share of the credentials from a
 * file (mode 0600 in a private temp dir); resolves once every process has loaded its locks.
 */
export async function lockProcesses(
  credentials: readonly DeviceCredentials[],
  mqttUrl: string,
  perProcess: number,
): Promise<LockProcesses> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-locks-'))
  const children: ChildProcess[] = []
  try {
    for (let offset = 0; offset < credentials.length; offset += perProcess) {
      const file = join(dir, `creds-${offset}.json`)
      await writeCredentialsFile(file, credentials.slice(offset, offset + perProcess))
      children.push(
        forkTs('bench/lock-process.ts', ['--creds', file, '--mqtt-url', mqttUrl], ['--max-old-space-size=4096']),
      )
    }
    await Promise.all(children.map((child) => nextMessage(child, 'loaded', 120_000)))
  } catch (error) {
    await Promise.all(children.map((child) => stopChild(child, 1000)))
    throw error
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    children,
    async start() {
      const t0 = performance.now()
      const replies = await Promise.all(
        children.map((child) =>
          request<{ type: string; failures: number; firstFailure?: string }>(
            child,
            { type: 'start' },
            'started',
            600_000,
          ),
        ),
      )
      const failures = replies.reduce((sum, r) => sum + r.failures, 0)
      const firstFailure = replies.find((r) => r.firstFailure)?.firstFailure
      return { ms: performance.now() - t0, failures, ...(firstFailure ? { firstFailure } : {}) }
    },
    counters: () => Promise.all(children.map((child) => request(child, { type: 'counters' }, 'counters'))),
    async kill() {
      await Promise.all(children.map((child) => stopChild(child, 0)))
    },
    async stop() {
      await Promise.all(
        children.map((child) => request(child, { type: 'stop' }, 'stopped', 120_000).catch(() => undefined)),
      )
      await Promise.all(children.map((child) => stopChild(child, 5_000)))
    },
  }
}

interface ListReply {
  devices: Array<{ properties: { online: boolean } }>
  pagination: { next_page_cursor: string | null }
}

/** Devices latchkey reports online, read page by page through `/devices/list` (what an app would see). */
export async function countOnline(lk: LatchkeyChild): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  let online = 0
  let cursor: string | null = null
  try {
    do {
      const page: ListReply = await postJson<ListReply>(
        agent,
        lk.httpUrl,
        '/devices/list',
        { limit: 1000, ...(cursor ? { page_cursor: cursor } : {}) },
        lk.apiKey,
      )
      online += page.devices.filter((d) => d.properties.online).length
      cursor = page.pagination.next_page_cursor
    } while (cursor)
  } finally {
    agent.destroy()
  }
  return online
}
