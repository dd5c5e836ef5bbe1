import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type Config } from '../../src/config.js'
import type { Clock } from '../../src/domain/clock.js'
import { startLatchkey, type Latchkey } from '../../src/latchkey.js'
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
  close: () => Promise<void>
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

/** A running latchkey on port 0 with a fresh SQLite file; `close` stops it and removes the data. */
export async function startTestLatchkey(
  options: { env?: Record<string, string>; clock?: Clock; dataDir?: string; keep?: boolean } = {},
): Promise<TestLatchkey> {
  const dataDir = options.dataDir ?? tempDataDir()
  const config = testConfig(dataDir, options.env)
  const lk = await startLatchkey(config, options.clock ? { clock: options.clock } : {})
  let apiKey: string
  let workspaceId: string
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
    close: async () => {
      await lk.close()
      if (options.keep) return
      rmSync(dataDir, { recursive: true, force: true })
      dropTestDatabase(dataDir)
    },
  }
}
