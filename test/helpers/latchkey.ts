/**
 * Test servers as vitest fixtures. Import `it` from here and ask for what the test needs by name; everything a
 * fixture starts is stopped after the test, last started first, even when the test fails.
 *
 *   it('locks a door', async ({ latchkey, lock }) => {
 *     const { device } = await lock(latchkey, { behaviour: { ackLatencyMs: 5 } })
 *     const res = await latchkey.call('/locks/lock_door', { device_id: device.deviceId, sync: true })
 *     expect(res.body.action_attempt.status).toBe('success')
 *   })
 *
 * - `latchkey`: a running latchkey (HTTP and MQTT on 127.0.0.1:0, a fresh SQLite data dir removed afterwards,
 *   admin key `ADMIN_KEY`, the bootstrap workspace's key as `apiKey`). Started only if the test names it.
 * - `latchkeyOptions`: how `latchkey` starts (`env`, `clock`, `dataDir`, `keep`). Default `{}`; change it for a
 *   describe block with `it.override({ latchkeyOptions: { env: { ACTION_TIMEOUT_MS: '1000' } } })`.
 * - `start(options)`: starts another latchkey (a second instance, a restart on a kept `dataDir`, a fake clock
 *   chosen inside the test); stopped after the test.
 * - `lock(t, options?, key?)`: a simulated lock for a new device of `t`, connected and online; stopped afterwards.
 * - `defer(close)`: anything else the test starts (an MQTT client, a child process, a temp dir) is closed here.
 *   A closer that fails does not keep the others from running; its error then fails the test.
 * A start-up that throws registers nothing, so teardown never closes an instance from another test.
 *
 * A file adds its own fixtures on top, e.g. `const it = base.extend<{ seam: SeamHttp }>({ seam: async ({ latchkey },
 * use) => use(new SeamHttp(…)) })`, registering anything it starts with `defer`. Tables that need fixtures use
 * `it.for([...])('…', ([a, b], { latchkey }) => …)`; `it.each` does not pass them.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'vitest'
import type { VirtualLock, VirtualLockOptions } from '../../simulator/index.js'
import { loadConfig, type Config } from '../../src/config.js'
import type { Clock } from '../../src/domain/clock.js'
import { startLatchkey, type Latchkey } from '../../src/latchkey.js'
import { onlineLock, type CreatedDevice } from './devices.js'
import { dropTestDatabase, testDatabaseEnv } from './store.js'

/** Test responses are read field by field; asserting on them is the test's job. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ApiResponse = { status: number; body: any; headers: Headers }

export const ADMIN_KEY = 'seam_admin_test_key_0123456789abcdef'

export interface TestLatchkey {
  lk: Latchkey
  config: Config
  dataDir: string
  apiKey: string
  workspaceId: string
  /** POSTs JSON to the Connect API with the workspace key (or another key) and returns status + body. */
  call: (path: string, body?: unknown, key?: string | null, headers?: Record<string, string>) => Promise<ApiResponse>
  /** Stops it (and removes the data dir unless `keep`); a second call waits for the first. */
  close: () => Promise<void>
}

export interface StartOptions {
  env?: Record<string, string>
  clock?: Clock
  /** Start on this data dir instead of a fresh one (a restart). */
  dataDir?: string
  /** Leave the data dir in place on close, for a restart on it. */
  keep?: boolean
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'latchkey-test-'))
}

export function testConfig(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    LOG_LEVEL: 'silent',
    ADMIN_API_KEY: ADMIN_KEY,
    ...testDatabaseEnv(dataDir),
    ...env,
  })
}

export async function request(
  baseUrl: string,
  path: string,
  body: unknown,
  key: string | null,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
}

/** A running latchkey on port 0 with a fresh SQLite file; `close` stops it and removes the data. Prefer the fixtures. */
export async function startTestLatchkey(options: StartOptions = {}): Promise<TestLatchkey> {
  const dataDir = options.dataDir ?? tempDataDir()
  const config = testConfig(dataDir, options.env)
  const lk = await startLatchkey(config, options.clock ? { clock: options.clock } : {})
  let apiKey: string
  let workspaceId: string
  let closing: Promise<void> | undefined
  if (lk.bootstrap) {
    apiKey = lk.bootstrap.api_key
    workspaceId = lk.bootstrap.workspace_id
  } else {
    const created = await request(lk.httpUrl, '/workspaces/create', { name: 'restart' }, ADMIN_KEY)
    apiKey = created.body.api_key.token
    workspaceId = created.body.workspace.workspace_id
  }
  return {
    lk,
    config,
    dataDir,
    apiKey,
    workspaceId,
    call: (path, body, key, headers) => request(lk.httpUrl, path, body, key === undefined ? apiKey : key, headers),
    close: () =>
      (closing ??= (async () => {
        await lk.close()
        if (options.keep) return
        rmSync(dataDir, { recursive: true, force: true })
        dropTestDatabase(dataDir)
      })()),
  }
}

export interface LatchkeyFixtures {
  latchkeyOptions: StartOptions
  latchkey: TestLatchkey
  start: (options?: StartOptions) => Promise<TestLatchkey>
  lock: (
    t: TestLatchkey,
    options?: Partial<VirtualLockOptions>,
    key?: string,
  ) => Promise<{ lock: VirtualLock; device: CreatedDevice }>
  defer: (close: () => unknown) => void
  /** A fresh data directory on each call, removed after the test. */
  dir: () => string
}

export const it = test.extend<LatchkeyFixtures>({
  latchkeyOptions: {},
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  defer: async ({}, use) => {
    const closers: Array<() => unknown> = []
    await use((close) => void closers.push(close))
    const errors: unknown[] = []
    for (const close of closers.reverse()) {
      try {
        await close()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors[0]
  },
  dir: async ({ defer }, use) => {
    await use(() => {
      const dir = tempDataDir()
      defer(() => rmSync(dir, { recursive: true, force: true }))
      return dir
    })
  },
  start: async ({ defer }, use) => {
    await use(async (options = {}) => {
      const t = await startTestLatchkey(options)
      defer(() => t.close())
      return t
    })
  },
  latchkey: async ({ start, latchkeyOptions }, use) => {
    await use(await start(latchkeyOptions))
  },
  lock: async ({ defer }, use) => {
    await use(async (t, options = {}, key) => {
      const made = await onlineLock(t, options, key)
      defer(() => made.lock.stop())
      return made
    })
  },
})
