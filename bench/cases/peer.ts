import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { ROOT, spawnTracked, stopChild } from '../lib/children.js'
import { closedLoop } from '../lib/http.js'
import type { LatchkeyChild } from '../lib/latchkey-child.js'
import type { LoopResult } from '../lib/loop.js'
import type { BenchOptions } from '../lib/options.js'
import { round } from '../lib/stats.js'

/**
 * The peer: Seam's own in-memory fake (`@seamapi/fake-seam-connect --seed`) and latchkey under the same load
 * generator: `POST /locks/lock_door`, 100 connections. The fake only stores an attempt in memory; latchkey commits
 * it, round-trips the real (simulated) lock and answers with the settled attempt (default request: no `sync`).
 */

export const PEER_CONCURRENCY = 100
/** From the fake's seed (src/lib/database/seed.ts): workspace 1's API key and its first August lock. */
const FAKE_API_KEY = 'seam_apikey1_token'
const FAKE_DEVICE = 'august_device_1'

export interface PeerResult {
  concurrency: number
  latchkey_request: string
  latchkey: LoopResult
  /** `sync: false`: answered once the attempt is committed, before the lock's round trip. */
  latchkey_async: LoopResult
  fake: LoopResult
  /** latchkey (default request, the full round trip) / fake. */
  ratio: number
  ratio_sync: number
  ratio_async: number
}

export async function peer(
  options: BenchOptions,
  lk: LatchkeyChild,
  deviceIds: readonly string[],
  cpuOf: Record<string, number>,
): Promise<PeerResult> {
  const load = (
    baseUrl: string,
    key: string,
    deviceFor: (slot: number) => string,
    server: Record<string, number>,
    extra: Record<string, unknown> = {},
  ) =>
    closedLoop({
      baseUrl,
      concurrency: PEER_CONCURRENCY,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      headers: { authorization: `Bearer ${key}` },
      request: (slot) => ({ path: '/locks/lock_door', body: JSON.stringify({ device_id: deviceFor(slot), ...extra }) }),
      ok: (text) => (JSON.parse(text) as { ok?: boolean }).ok === true,
      cpuOf: server,
    })
  const latchkey = await load(lk.httpUrl, lk.apiKey, (slot) => deviceIds[slot % deviceIds.length] as string, cpuOf)
  const latchkeyAsync = await load(
    lk.httpUrl,
    lk.apiKey,
    (slot) => deviceIds[slot % deviceIds.length] as string,
    cpuOf,
    { sync: false },
  )
  // The short warm-up, not settleMs: the fake keeps every attempt in memory and slows as they pile up
  // (docs/performance.md#warm-up). latchkey is warm from the cases before.
  const fake = await withFake((url, pid) => load(url, FAKE_API_KEY, () => FAKE_DEVICE, { fake: pid }))
  return {
    concurrency: PEER_CONCURRENCY,
    latchkey_request: 'default (no sync field: waits up to LOCK_RESPONSE_WAIT_MS for the settled attempt)',
    latchkey,
    latchkey_async: latchkeyAsync,
    fake,
    ratio: round(latchkey.per_s / Math.max(1, fake.per_s), 2),
    ratio_sync: round(latchkey.per_s / Math.max(1, fake.per_s), 2),
    ratio_async: round(latchkeyAsync.per_s / Math.max(1, fake.per_s), 2),
  }
}

async function withFake<T>(use: (baseUrl: string, pid: number) => Promise<T>): Promise<T> {
  const port = await freePort()
  const bin = join(ROOT, 'node_modules', '@seamapi', 'fake-seam-connect', 'dist', 'server.js')
  const child = spawnTracked(process.execPath, [bin, '--seed'], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    PORT: String(port),
  })
  try {
    // The fake logs its URL once it listens (it binds every interface; we only ever talk to 127.0.0.1).
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`fake-seam-connect did not start: ${out}`)), 60_000)
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes(`localhost:${port}`)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code) => reject(new Error(`fake-seam-connect exited (${code}): ${out}`)))
    })
    return await use(`http://127.0.0.1:${port}`, child.pid as number)
  } finally {
    await stopChild(child, 5_000)
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}
