import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { get, type Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { atExit, spawnTracked, stopChild } from './children.js'
import { SERVER_ENTRY, SERVER_NODE_FLAGS } from '../../src/compose/node-flags.js'
import { assertLoopback, post } from './http.js'
import type { GcTotals } from './loop.js'

/** latchkey as `npm start` runs it, in its own process: `node <SERVER_NODE_FLAGS> dist/src/main.js` on a fresh DATA_DIR. */

export const BENCH_ADMIN_KEY = 'seam_admin_bench_key_0123456789abcdef'

export interface LatchkeyChild {
  child: ChildProcess
  pid: number
  httpUrl: string
  mqttUrl: string
  apiKey: string
  workspaceId: string
  dataDir: string
  /** Lines the child logged at warn level or above (shown when a case fails). */
  problems: string[]
  /** SIGTERM (graceful: writes the CPU profile when one was asked for), then removes DATA_DIR. */
  stop(): Promise<void>
}

export interface LatchkeyChildOptions {
  env?: Record<string, string>
  /** Directory for `--cpu-prof` output; no profiling when unset. */
  cpuProfDir?: string
  /** Node flags in place of the server's own (SERVER_NODE_FLAGS), to compare them with others. */
  serverFlags?: readonly string[]
  /** Extra node flags, e.g. `--perf-basic-prof` for a `perf record` of the child. */
  nodeArgs?: string[]
  startTimeoutMs?: number
  /**
   * The workspace to drive, for an instance that joins a database another one created (it writes no
   * bootstrap.json); by default the child's own first-start credentials.
   */
  credentials?: { apiKey: string; workspaceId: string }
}

export async function startLatchkeyChild(options: LatchkeyChildOptions = {}): Promise<LatchkeyChild> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'))
  const forgetDataDir = atExit(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    PORT: '0',
    MQTT_PORT: '0',
    HOST: '127.0.0.1',
    MQTT_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    ADMIN_API_KEY: BENCH_ADMIN_KEY,
    // The benchmark's locks ack instantly, hundreds of commands a second each: far past a real lock's publish
    // rate, which the defaults are set for (docs/mqtt.md, "Limits").
    MQTT_DEVICE_PUBLISH_RATE: '1000000',
    MQTT_DEVICE_PUBLISH_BURST: '1000000',
    ...options.env,
  }
  const profiling = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []
  // The build (`npm run bench` builds it first), run by node itself: the pid we measure is latchkey's own.
  const child = spawnTracked(
    process.execPath,
    [
      '--max-old-space-size=4096',
      ...(options.serverFlags ?? SERVER_NODE_FLAGS),
      ...(options.nodeArgs ?? []),
      ...profiling,
      SERVER_ENTRY,
    ],
    env,
  )
  const problems: string[] = []
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))

  const urls = await new Promise<{ httpUrl: string; mqttUrl: string }>((resolve, reject) => {
    let httpUrl: string | undefined
    let mqttUrl: string | undefined
    const timer = setTimeout(
      () => fail(new Error('latchkey did not log its addresses in time')),
      options.startTimeoutMs ?? 60_000,
    )
    const onExit = (code: number | null) => fail(new Error(`latchkey exited (${code}) during start-up: ${stderr}`))
    function fail(error: Error): void {
      clearTimeout(timer)
      child.off('exit', onExit)
      reject(error)
    }
    child.once('exit', onExit)
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const log = parseLog(line)
      if (!log) return
      if (log.level >= 40) problems.push(line.slice(0, 500))
      httpUrl ??= log.httpUrl
      mqttUrl ??= log.mqttUrl
      if (httpUrl && mqttUrl) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve({ httpUrl, mqttUrl })
      }
    })
  })
  assertLoopback(new URL(urls.httpUrl))
  assertLoopback(new URL(urls.mqttUrl.replace(/^mqtt:/, 'http:')))
  const credentials = options.credentials ?? readBootstrap(dataDir)
  return {
    child,
    pid: child.pid as number,
    ...urls,
    ...credentials,
    dataDir,
    problems,
    async stop() {
      await stopChild(child, 30_000)
      rmSync(dataDir, { recursive: true, force: true })
      forgetDataDir()
    },
  }
}

function readBootstrap(dataDir: string): { apiKey: string; workspaceId: string } {
  const bootstrap = JSON.parse(readFileSync(join(dataDir, 'bootstrap.json'), 'utf8')) as {
    api_key: string
    workspace_id: string
  }
  return { apiKey: bootstrap.api_key, workspaceId: bootstrap.workspace_id }
}

/** A JSON log line; the start-up record carries `http_url` and `mqtt_url`. */
function parseLog(line: string): { level: number; httpUrl?: string; mqttUrl?: string } | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const value = JSON.parse(line) as { level?: unknown; http_url?: unknown; mqtt_url?: unknown }
    return {
      level: typeof value.level === 'number' ? value.level : 30,
      ...(typeof value.http_url === 'string' ? { httpUrl: value.http_url } : {}),
      ...(typeof value.mqtt_url === 'string' ? { mqttUrl: value.mqtt_url } : {}),
    }
  } catch {
    return undefined
  }
}

function metricsText(agent: Agent | undefined, lk: LatchkeyChild): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    get(new URL('/metrics', lk.httpUrl), agent ? { agent } : {}, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
}

/** The value of one line of latchkey's /metrics (Prometheus text), or 0. */
export async function metric(agent: Agent, lk: LatchkeyChild, name: string): Promise<number> {
  const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(await metricsText(agent, lk))
  return match ? Number(match[1]) : 0
}

/** latchkey's garbage collections so far, by kind (`minor`, `major`, …): prom-client's `nodejs_gc_duration_seconds`. */
export async function gcTotals(lk: LatchkeyChild): Promise<GcTotals> {
  const totals: GcTotals = {}
  const line = /^nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"\} ([\d.e+-]+)$/gm
  for (const [, field, kind, value] of (await metricsText(undefined, lk)).matchAll(line)) {
    const entry = (totals[kind as string] ??= { count: 0, ms: 0 })
    if (field === 'count') entry.count = Number(value)
    else entry.ms = Number(value) * 1000
  }
  return totals
}

/** Whether a route exists: anything but the catch-all 404 `not_found` counts as present. */
export async function hasRoute(agent: Agent, lk: LatchkeyChild, path: string): Promise<boolean> {
  const reply = await post(agent, lk.httpUrl, path, '{}', { authorization: `Bearer ${lk.apiKey}` })
  return !(reply.status === 404 && reply.text.includes('"not_found"'))
}
