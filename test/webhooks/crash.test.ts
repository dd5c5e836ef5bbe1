import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { describe, expect } from 'vitest'
import { ADMIN_KEY, request, tempDataDir } from '../helpers/latchkey.js'
import { testDatabaseEnv } from '../helpers/store.js'
import { it, verifyBoth, type Receiver } from './helpers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Child {
  process: ChildProcess
  httpUrl: string
  exited: Promise<unknown>
}

/** `npx tsx src/main.ts` in its own process group, so a SIGKILL takes down tsx and the node it runs. */
async function startChild(dataDir: string): Promise<Child> {
  const child = spawn('npx', ['tsx', 'src/main.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: '0',
      MQTT_PORT: '0',
      HOST: '127.0.0.1',
      MQTT_HOST: '127.0.0.1',
      ADMIN_API_KEY: ADMIN_KEY,
      LOG_LEVEL: 'info',
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      WEBHOOK_RETRY_SCHEDULE: '2,2,2,2,2,2,2,2,2,2',
      ...testDatabaseEnv(dataDir),
    },
  })
  const exited = once(child, 'exit')
  let output = ''
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      output += chunk.toString()
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue
        const msg = (JSON.parse(line) as { msg?: string }).msg ?? ''
        const match = /^latchkey HTTP listening on (\S+)$/.exec(msg)
        if (match?.[1]) return resolve(match[1])
      }
    }
    child.stdout?.on('data', read)
    child.stderr?.on('data', read)
    void exited.then(() => reject(new Error(`latchkey exited before listening:\n${output}`)))
  })
  return { process: child, httpUrl, exited }
}

async function kill(child: Child, signal: NodeJS.Signals): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  process.kill(-(child.process.pid as number), signal)
  await child.exited
}

/** A port that nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('crash and restart', () => {
  it('delivers everything committed before a SIGKILL after the restart, deduplicable by webhook-id', async ({
    rig,
  }) => {
    // Scenario: five events committed; one receiver answers 503, another is not listening yet; SIGKILL; both receivers
    // become healthy; restart on the same data → every event arrives at both, signed, same webhook-id as before.
    const dataDir = tempDataDir()
    rig.defer(async () => rmSync(dataDir, { recursive: true, force: true }))
    let healthy = false
    const flaky = await rig.receiver(() => (healthy ? { status: 204 } : { status: 503 }))
    const latePort = await freePort()

    const first = await startChild(dataDir)
    rig.defer(() => kill(first, 'SIGKILL'))
    const { api_key: apiKey } = JSON.parse(readFileSync(`${dataDir}/bootstrap.json`, 'utf8')) as { api_key: string }
    const call = (url: string, path: string, body: unknown) => request(url, path, body, apiKey)
    const flakyHook = (await call(first.httpUrl, '/webhooks/create', { url: flaky.url, event_types: ['device.added'] }))
      .body.webhook
    const lateUrl = `http://127.0.0.1:${latePort}/hook`
    const lateHook = (await call(first.httpUrl, '/webhooks/create', { url: lateUrl, event_types: ['device.added'] }))
      .body.webhook
    for (let i = 0; i < 5; i++)
      expect((await call(first.httpUrl, '/devices/create', { name: `door ${i}` })).status).toBe(200)
    const listed = await call(first.httpUrl, '/events/list', { event_type: 'device.added' })
    const eventIds = listed.body.events.map((e: { event_id: string }) => e.event_id).sort()
    expect(eventIds).toHaveLength(5)
    // Each event reached the flaky receiver once (503) and is committed with a retry pending: now crash.
    await flaky.until((r) => new Set(r.map((x) => x.id)).size === 5)
    await kill(first, 'SIGKILL')
    expect(first.process.signalCode).toBe('SIGKILL')

    healthy = true
    const before = flaky.received.length
    const late = await rig.receiver(undefined, latePort)
    const second = await startChild(dataDir)
    rig.defer(() => kill(second, 'SIGTERM'))
    const ids = (received: Receiver['received']) => [...new Set(received.map((r) => r.id))].sort()
    await flaky.until((r) => ids(r.slice(before)).length === 5, 15_000)
    await late.until((r) => ids(r).length === 5, 15_000)
    expect(ids(flaky.received.slice(before))).toEqual(eventIds)
    expect(ids(late.received)).toEqual(eventIds)
    for (const request of flaky.received) verifyBoth(flakyHook.secret, request)
    for (const request of late.received) verifyBoth(lateHook.secret, request)
    // A retry carries the id of the first try: the receiver's dedupe key.
    expect(ids(flaky.received.slice(0, before))).toEqual(eventIds)
  })
})
