import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, vi } from 'vitest'
import { VirtualLock, type VirtualLockOptions } from '../../simulator/index.js'
import { startChild, type ChildLatchkey } from '../helpers/child.js'
import { ADMIN_KEY, it as base, request, tempDataDir } from '../helpers/latchkey.js'
import { queryTestDatabase } from '../helpers/store.js'

/**
 * `dataDir`: a fresh data dir, removed after the test; `child(env)`: latchkey in a child process on it (HTTP and MQTT
 * on port 0), killed after the test; `sim(options)`: a simulated lock, stopped after the test.
 */
const it = base.extend<{
  dataDir: string
  child: (env?: Record<string, string>) => Promise<ChildLatchkey>
  sim: (options: VirtualLockOptions) => VirtualLock
}>({
  dataDir: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    await use(dir)
  },
  child: async ({ dataDir, defer }, use) => {
    await use(async (env = {}) => {
      const child = await startChild({ DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN_KEY, ...env })
      defer(() => child.kill())
      return child
    })
  },
  sim: async ({ defer }, use) => {
    await use((options) => {
      const lock = new VirtualLock(options)
      defer(() => lock.stop().catch(() => lock.kill()))
      return lock
    })
  },
})

describe('a crash in the middle of attempts', () => {
  it('settles every attempt exactly once after SIGKILL and a restart, and redelivers to a returning lock', async ({
    dataDir,
    child,
    sim,
  }) => {
    // Scenario: 5 attempts against a silent lock and 1 against a lock that drops, SIGKILL, restart on the same DATA_DIR.
    const first = await child()
    const { api_key: key } = JSON.parse(readFileSync(join(dataDir, 'bootstrap.json'), 'utf8')) as { api_key: string }
    const call = (base: string, path: string, body: unknown) => request(base, path, body, key)

    const creds = async (name: string) => (await call(first.httpUrl, '/devices/create', { name })).body.mqtt_credentials
    const silentCreds = await creds('silent')
    const returningCreds = await creds('returning')
    const silent = sim({
      url: silentCreds.url,
      deviceId: silentCreds.username,
      password: silentCreds.password,
      behaviour: { silent: 1 },
      reconnectPeriodMs: 50,
    })
    const dropping = sim({
      url: returningCreds.url,
      deviceId: returningCreds.username,
      password: returningCreds.password,
      behaviour: { silent: 1 },
      reconnectPeriodMs: 0,
    })
    await silent.start()
    await dropping.start()
    const online = async (base: string, id: string) =>
      vi.waitFor(
        async () =>
          expect((await call(base, '/devices/get', { device_id: id })).body.device.properties.online).toBe(true),
        { timeout: 10_000 },
      )
    await online(first.httpUrl, silentCreds.username)
    await online(first.httpUrl, returningCreds.username)

    const silentIds: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await call(first.httpUrl, '/locks/lock_door', {
        device_id: silentCreds.username,
        sync: false,
        timeout_ms: i < 2 ? 1000 : 4000,
      })
      silentIds.push(res.body.action_attempt.action_attempt_id)
    }
    const commanded = dropping.next('command')
    const returning = (
      await call(first.httpUrl, '/locks/unlock_door', {
        device_id: returningCreds.username,
        sync: false,
        timeout_ms: 30_000,
      })
    ).body.action_attempt
    await commanded
    // The broker's acknowledgement of the command is committed as `sent` before the crash, so the history is exact.
    await vi.waitFor(async () => {
      const a = (await call(first.httpUrl, '/action_attempts/get', { action_attempt_id: returning.action_attempt_id }))
        .body.action_attempt
      expect(a.sent_at).not.toBeNull()
    })
    dropping.kill()
    await first.kill('SIGKILL')

    // The lock comes back after the restart as a fresh boot: it remembers nothing and acks what it receives. The new
    // process listens on a port of its own, so the lock is given the address the restarted broker reports.
    const second = await child()
    const rebooted = sim({
      url: second.mqttUrl,
      deviceId: returningCreds.username,
      password: returningCreds.password,
      reconnectPeriodMs: 50,
    })
    await rebooted.start()

    const all = [...silentIds, returning.action_attempt_id]
    await vi.waitFor(
      async () => {
        for (const id of all)
          expect(
            (await call(second.httpUrl, '/action_attempts/get', { action_attempt_id: id })).body.action_attempt.status,
          ).not.toBe('pending')
      },
      { timeout: 15_000, interval: 100 },
    )
    for (const id of silentIds) {
      const a = (await call(second.httpUrl, '/action_attempts/get', { action_attempt_id: id })).body.action_attempt
      expect(a.error.type).toBe('action_attempt_expired')
    }
    const back = (
      await call(second.httpUrl, '/action_attempts/get', { action_attempt_id: returning.action_attempt_id })
    ).body.action_attempt
    expect(back.status).toBe('success')
    expect(rebooted.counters.commandsReceived).toBe(1)
    const history = (
      await call(second.httpUrl, '/action_attempts/history', { action_attempt_id: returning.action_attempt_id })
    ).body.history
    expect(history.map((h: { kind: string }) => h.kind)).toEqual(['created', 'sent', 'republished', 'succeeded'])

    // None missing, none settled twice: one row each, and exactly one outcome event each.
    await second.kill('SIGTERM')
    const rows = await queryTestDatabase<{ action_attempt_id: string }>(
      dataDir,
      'SELECT action_attempt_id FROM action_attempts',
    )
    expect(rows.map((r) => r.action_attempt_id).sort()).toEqual([...all].sort())
    const outcomes = await queryTestDatabase<{ action_attempt_id: string; n: number }>(
      dataDir,
      "SELECT action_attempt_id, count(*) AS n FROM events WHERE event_type LIKE 'action_attempt.%' GROUP BY action_attempt_id",
    )
    expect(outcomes.map((o) => o.action_attempt_id).sort()).toEqual([...all].sort())
    expect(outcomes.every((o) => o.n === 1)).toBe(true)
  }, 60_000)

  it('exits 0 on SIGTERM', async ({ child }) => {
    // Scenario: a clean shutdown closes HTTP, MQTT and the database and exits with status 0.
    const running = await child()
    expect(await running.kill('SIGTERM')).toBe(0)
    expect(running.output.join('\n')).toContain('SIGTERM: shutting down')
  })
})
