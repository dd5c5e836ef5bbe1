import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect } from 'vitest'
import { it } from '../webhooks/helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const README = readFileSync(new URL('README.md', `file://${ROOT}`), 'utf8')

describe('README', () => {
  it('runs the SDK snippet as written against a latchkey with a simulated lock', async ({ rig }) => {
    // Scenario: the README's TypeScript block, with only its endpoint pointed at a test server → the lock locks.
    const t = await rig.latchkey()
    await rig.lock(t)
    const snippet = /With the SDK:\n\n```ts\n([\s\S]*?)```/.exec(README)?.[1]
    expect(snippet).toBeDefined()
    const code = `${(snippet as string).replace("'http://127.0.0.1:3000'", JSON.stringify(t.lk.httpUrl))}
console.log(JSON.stringify(attempt))`
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, KEY: t.apiKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const [code_] = await once(child, 'exit')
    expect(code_, output).toBe(0)
    expect(JSON.parse(output.trim().split('\n').at(-1) as string)).toMatchObject({ status: 'success' })
  })

  it('walks through webhooks with a receiver on this machine, which the start command lets through', () => {
    // Scenario: step 6 subscribes a loopback receiver; the start command allows loopback through the SSRF guard.
    expect(README).not.toMatch(/webhooks\/create[^\n]*\n[^\n]*https:\/\/example\.com/)
    expect(README).toMatch(/WEBHOOK_ALLOWED_CIDRS=127\.0\.0\.0\/8 npm start/)
    expect(README).toMatch(/"url": "http:\/\/127\.0\.0\.1:8787\/hooks"/)
    expect(README).toMatch(/\.listen\(8787, '127\.0\.0\.1'\)/)
  })
})
