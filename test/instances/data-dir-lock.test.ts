import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect } from 'vitest'
import { childEnv, startChild } from '../helpers/child.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** latchkey's build on `dataDir` in a child process that is expected to stop by itself: its exit code and output. */
async function failingStart(dataDir: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    cwd: ROOT,
    // The lock guards a SQLite DATA_DIR: never a database of the PostgreSQL test store.
    env: { ...childEnv(), DATA_DIR: dataDir, DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

const it = base.extend<{ dataDir: string }>({
  dataDir: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    await use(dir)
  },
})

/** SQLite in DATA_DIR serves one process (docs/scale-out.md#several-instances). */
describe('one latchkey per SQLite DATA_DIR', () => {
  it('a second process on the same DATA_DIR refuses to start with one line; the first keeps serving', async ({
    dataDir,
    defer,
  }) => {
    // Scenario: A runs on DATA_DIR; B starts on it → exit 1, one stderr line naming DATA_DIR and DATABASE_URL.
    const first = await startChild({ DATA_DIR: dataDir, DATABASE_URL: '' })
    defer(() => first.kill())
    expect(existsSync(join(dataDir, 'latchkey.lock'))).toBe(true)
    const second = await failingStart(dataDir)
    expect(second.code).toBe(1)
    expect(second.stderr.trim().split('\n')).toEqual([
      `latchkey failed to start: DATA_DIR: ${dataDir} is in use by another latchkey (pid ${first.process.pid}); ` +
        'give each instance its own DATA_DIR, or set DATABASE_URL (PostgreSQL) to run several instances on one database',
    ])
    const health = await fetch(`${first.httpUrl}/readyz`)
    expect(health.status).toBe(200)
    // Released on a clean stop: the next start takes it.
    expect(await first.kill('SIGTERM')).toBe(0)
    expect(existsSync(join(dataDir, 'latchkey.lock'))).toBe(false)
    const third = await startChild({ DATA_DIR: dataDir, DATABASE_URL: '' })
    defer(() => third.kill())
  })

  it('takes over a lock left by a process that is gone', async ({ dataDir, defer }) => {
    // Scenario: latchkey.lock holds the pid of a process that has exited (a SIGKILLed latchkey) → the start succeeds.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
    writeFileSync(join(dataDir, 'latchkey.lock'), `${gone.stdout.toString()}\n`)
    const started = await startChild({ DATA_DIR: dataDir, DATABASE_URL: '' })
    defer(() => started.kill())
    expect(started.output.join('\n')).not.toContain('is in use by another latchkey')
  })
})
