import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { tempDataDir } from '../helpers/latchkey.js'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Started {
  lines: string[]
  /** Resolves with the stdout lines once `done(lines)` is true. */
  until(done: (lines: string[]) => boolean): Promise<string[]>
  stop(): Promise<number | null>
}

/** `npm start` in a child on a fresh DATA_DIR without ADMIN_API_KEY (a first start); stopped at teardown. */
const it = test.extend<{ start: (format: 'json' | 'pretty') => Promise<Started & { dataDir: string }> }>({
  // eslint-disable-next-line no-empty-pattern
  start: async ({}, use) => {
    const children: ChildProcess[] = []
    const dirs: string[] = []
    await use(async (format) => {
      const dataDir = tempDataDir()
      dirs.push(dataDir)
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATA_DIR: dataDir,
        HOST: '127.0.0.1',
        MQTT_HOST: '127.0.0.1',
        PORT: '0',
        MQTT_PORT: '0',
        LOG_LEVEL: 'info',
        LOG_FORMAT: format,
      }
      const child = spawn(process.execPath, [SERVER_ENTRY], { cwd: ROOT, env, stdio: 'pipe' })
      children.push(child)
      const exited = once(child, 'exit')
      const lines: string[] = []
      const waiters: Array<() => void> = []
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line)
        for (const wake of waiters) wake()
      })
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      return {
        dataDir,
        lines,
        until: (done) =>
          new Promise((resolve, reject) => {
            const check = () => done(lines) && resolve(lines)
            waiters.push(check)
            check()
            void exited.then(() => reject(new Error(`latchkey exited:\n${lines.join('\n')}\n${stderr}`)))
          }),
        async stop() {
          child.kill('SIGTERM')
          const [code] = await exited
          return code as number | null
        },
      }
    })
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  },
})

describe('start-up output', () => {
  it('off a terminal: JSON lines only, one start-up record with every address and the first credentials', async ({
    start,
  }) => {
    // Scenario: LOG_FORMAT=json (what a pipe gets by default) → every line is JSON, no fastify "Server listening".
    const lk = await start('json')
    const lines = await lk.until((all) => all.some((line) => line.includes('"http_url"')))
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    const banners = records.filter((r) => 'http_url' in r)
    expect(banners).toHaveLength(1)
    const banner = banners[0] as Record<string, string>
    expect(banner.http_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(banner.mqtt_url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    expect(banner.dashboard_url).toBe(`${banner.http_url}/dashboard`)
    expect(banner.docs_url).toBe(`${banner.http_url}/docs`)
    expect(banner.credentials_file).toBe(join(lk.dataDir, 'bootstrap.json'))
    expect(banner.credentials).toEqual(JSON.parse(readFileSync(join(lk.dataDir, 'bootstrap.json'), 'utf8')))
    expect(records.some((r) => String(r.msg).includes('Server listening'))).toBe(false)
    expect((await fetch(`${banner.http_url}/healthz`)).status).toBe(200)
    expect(await lk.stop()).toBe(0)
    expect(lk.lines.every((line) => line.startsWith('{'))).toBe(true)
  })

  it('on a terminal: one plain banner in a fixed order, pretty logs, no JSON', async ({ start }) => {
    // Scenario: LOG_FORMAT=pretty (what a terminal gets by default) → the banner names HTTP, the dashboard, the
    // docs, the metrics, MQTT and the credentials file, in that order, then the first start's keys.
    const lk = await start('pretty')
    const lines = await lk.until((all) => all.some((line) => line.includes('admin_api_key')))
    const order = ['HTTP API', 'Dashboard', 'API docs', 'Metrics', 'MQTT broker', 'Credentials']
    const at = order.map((label) => lines.findIndex((line) => line.trimStart().startsWith(label)))
    expect(at.every((index) => index >= 0)).toBe(true)
    expect([...at].sort((a, b) => a - b)).toEqual(at)
    const httpUrl = /HTTP API\s+(\S+)/.exec(lines[at[0] as number] as string)?.[1] as string
    const creds = JSON.parse(readFileSync(join(lk.dataDir, 'bootstrap.json'), 'utf8')) as Record<string, string>
    expect(lines.join('\n')).toContain(creds.api_key)
    expect((await fetch(`${httpUrl}/docs`)).status).toBe(200)
    expect(await lk.stop()).toBe(0)
    expect(lk.lines.some((line) => line.startsWith('{'))).toBe(false)
    expect(lk.lines.some((line) => line.includes('Server listening'))).toBe(false)
    // pino-pretty's shape: a time, the level, the message.
    expect(lk.lines.some((line) => /^\[[\d:.]+\] INFO.*SIGTERM: shutting down/.test(line))).toBe(true)
  })
})
