import { createServer, type AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { describe, expect, vi } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../scripts/pg-test-server.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { ADMIN_KEY, tempDataDir } from '../helpers/latchkey.js'
import { createWebhook, it as rigIt } from '../webhooks/helpers.js'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A loopback port that was just bound and closed again: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A second private PostgreSQL of the test's own, so that stopping it disturbs no other test. */
const it = rigIt.extend<{ outage: TestPostgres }>({
  // eslint-disable-next-line no-empty-pattern
  outage: async ({}, use) => {
    const server = await startTestPostgres()
    await use(server)
    server.stop()
  },
})

describe('PostgreSQL faults', () => {
  it('refuses to start on an unreachable database with one line naming DATABASE_URL, without its password', async () => {
    // Scenario: nothing listens on the port of DATABASE_URL → one line on stderr, exit status 1, no password.
    const url = `postgres://latchkey:hunter2-secret@127.0.0.1:${await closedPort()}/latchkey`
    const child = spawn(process.execPath, [SERVER_ENTRY], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, DATA_DIR: tempDataDir(), PORT: '0', MQTT_PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    const [code] = await once(child, 'exit')
    expect(code).toBe(1)
    const lines = stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('DATABASE_URL=postgres://latchkey:*****@127.0.0.1:')
    expect(lines[0]).toMatch(/ECONNREFUSED/)
    expect(stderr + stdout).not.toContain('hunter2')
  })

  it('answers 503 while the database is gone, then reconnects, settles overdue attempts and resumes deliveries', async ({
    rig,
    outage,
  }) => {
    // Scenario: a webhook, a silent lock and a pending attempt; the database stops; the API answers 503 in each
    // dialect's shape; the deadline passes meanwhile; the database returns → ready, the attempt expires once, its
    // webhook arrives, and everything committed before the outage is still there.
    // Near the real time: the lock checks a command's expires_at on its own clock.
    const clock = new FakeClock(Date.now())
    const t = await rig.latchkey({ clock, env: { DATABASE_URL: outage.url, LOCK_RESPONSE_WAIT_MS: '0' } })
    const receiver = await rig.receiver()
    const webhook = await createWebhook(t, receiver.url, ['action_attempt.*'])
    const { deviceId } = await rig.lock(t, { behaviour: { silent: 1 } })
    const created = await t.call('/locks/unlock_door', { device_id: deviceId })
    expect(created.status).toBe(200)
    const attemptId = created.body.action_attempt.action_attempt_id as string
    expect(created.body.action_attempt.status).toBe('pending')

    await vi.waitFor(
      async () => {
        const history = await t.call('/action_attempts/history', { action_attempt_id: attemptId })
        expect(history.body.history.map((h: { kind: string }) => h.kind)).toEqual(['created', 'sent'])
      },
      { timeout: 10_000, interval: 20 },
    )

    outage.pause()
    await vi.waitFor(async () => expect((await fetch(`${t.lk.httpUrl}/readyz`)).status).toBe(503), {
      timeout: 10_000,
      interval: 20,
    })
    const seam = await t.call('/devices/list', {})
    expect(seam.status).toBe(503)
    expect(seam.body.error).toMatchObject({ type: 'service_unavailable', message: expect.any(String) })
    const outpost = await fetch(`${t.lk.httpUrl}/api/v1/attempts`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    expect(outpost.status).toBe(503)
    expect(await outpost.json()).toMatchObject({ message: expect.any(String) })
    const v1 = await fetch(`${t.lk.httpUrl}/v1/tenants/${t.workspaceId}/deliveries`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    expect(v1.status).toBe(503)
    expect(v1.headers.get('content-type')).toContain('application/problem+json')
    const write = await t.call('/devices/create', { name: 'during the outage' })
    expect(write.status).toBe(503)

    // The deadline passes while the database is away: the expiry cannot commit yet.
    clock.advance(60_000)

    outage.resume()
    await vi.waitFor(async () => expect((await fetch(`${t.lk.httpUrl}/readyz`)).status).toBe(200), {
      timeout: 15_000,
      interval: 20,
    })
    await vi.waitFor(
      async () => {
        const got = await t.call('/action_attempts/get', { action_attempt_id: attemptId })
        expect(got.body.action_attempt.status).toBe('error')
      },
      { timeout: 10_000, interval: 20 },
    )
    await receiver.until((received) =>
      received.some((r) => (JSON.parse(r.body) as { action_attempt_id?: string }).action_attempt_id === attemptId),
    )
    const history = await t.call('/action_attempts/history', { action_attempt_id: attemptId })
    // Settled once: one outcome in its history, and its error says why.
    expect(history.body.history.map((h: { kind: string }) => h.kind)).toEqual(['created', 'sent', 'failed'])
    const settled = await t.call('/action_attempts/get', { action_attempt_id: attemptId })
    expect(settled.body.action_attempt.error.type).toBe('action_attempt_expired')
    // Committed before the outage: still there; refused during it: not there.
    const devices = await t.call('/devices/list', {})
    expect(devices.body.devices.map((d: { device_id: string }) => d.device_id)).toEqual([deviceId])
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).status).toBe(200)
  })
})
