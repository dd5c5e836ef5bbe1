import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, vi } from 'vitest'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { it } from '../webhooks/helpers.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Runs `npm run simulate` with the key in the environment until its locks are online, then SIGINT. */
async function simulate(t: TestLatchkey, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'simulator/cli.ts', '--api', t.lk.httpUrl, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LATCHKEY_API_KEY: t.apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = once(child, 'exit')
  try {
    await vi.waitFor(() => expect(output).toMatch(/^locks (\d+)\/\1 online/m), { timeout: 30_000, interval: 20 })
  } finally {
    child.kill('SIGINT')
  }
  const [code] = await exited
  return { code: code as number | null, output }
}

async function devices(t: TestLatchkey): Promise<Array<{ device_id: string; display_name: string }>> {
  return (await t.call('/devices/list', {})).body.devices
}

describe('simulate CLI against latchkey', () => {
  it('prints the device ids, and with --save reuses the saved locks on a re-run', async ({ rig }) => {
    // Scenario: `--count 2 --name-prefix door --save FILE` creates door-1 and door-2 and prints their ids; a re-run
    // with --count 3 reuses both and creates door-3 only. The key comes from LATCHKEY_API_KEY.
    const t = await rig.latchkey()
    const file = join(t.dataDir, 'locks.json')
    const first = await simulate(t, ['--count', '2', '--name-prefix', 'door', '--save', file])
    expect(first.code, first.output).toBe(0)
    const made = await devices(t)
    expect(made.map((d) => d.display_name).sort()).toEqual(['door-1', 'door-2'])
    for (const device of made) expect(first.output).toContain(`  ${device.device_id}\n`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).not.toContain(t.apiKey)

    const second = await simulate(t, ['--count', '3', '--name-prefix', 'door', '--save', file])
    expect(second.code, second.output).toBe(0)
    expect(second.output).toContain(`reusing 2 locks saved in ${file}`)
    const after = await devices(t)
    expect(after.map((d) => d.display_name).sort()).toEqual(['door-1', 'door-2', 'door-3'])
    for (const device of after) expect(second.output).toContain(`  ${device.device_id}\n`)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveLength(3)
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })
})
