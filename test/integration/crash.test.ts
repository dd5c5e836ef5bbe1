import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { VirtualLock } from '../../simulator/index.js'
import { freePort, startChild, type ChildLatchkey } from '../helpers/child.js'
import { ADMIN_KEY, request, tempDataDir } from '../helpers/latchkey.js'
import { queryTestDatabase } from '../helpers/store.js'

const children: ChildLatchkey[] = []
const locks: VirtualLock[] = []
let dataDir: string

afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.stop().catch(() => lock.kill())
  for (const child of children.splice(0)) await child.kill()
  rmSync(dataDir, { recursive: true, force: true })
})

async function start(env: Record<string, string>): Promise<ChildLatchkey> {
  const child = await startChild(env)
  children.push(child)
  return child
}

describe('a crash in the middle of attempts', () => {
  it('settles every attempt exactly once after SIGKILL and a restart, and redelivers to a returning lock', async () => {
    // Scenario: 5 attempts against a silent lock and 1 against a lock that drops, SIGKILL, restart on the same DATA_DIR.
    dataDir = tempDataDir()
    const env = { DATA_DIR: dataDir, MQTT_PORT: String(await freePort()), ADMIN_API_KEY: ADMIN_KEY }
    const first = await start(env)
    const { api_key: key } = JSON.parse(readFileSync(join(dataDir, 'bootstrap.json'), 'utf8')) as { api_key: string }
    const call = (base: string, path: string, body: unknown) => request(base, path, body, key)

    const creds = async (name: string) => (await call(first.httpUrl, '/devices/create', { name })).body.mqtt_credentials
    const silentCreds = await creds('silent')
    const returningCreds = await creds('returning')
    const silent = new VirtualLock({
      url: silentCreds.url,
      deviceId: silentCreds.username,
      password: silentCreds.password,
      behaviour: { silent: 1 },
      reconnectPeriodMs: 50,
    })
    const dropping = new VirtualLock({
      url: returningCreds.url,
      deviceId: returningCreds.username,
      password: returningCreds.password,
      behaviour: { silent: 1 },
      reconnectPeriodMs: 0,
    })
    locks.push(silent, dropping)
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

    // The lock comes back after the restart as a fresh boot: it remembers nothing and acks what it receives.
    const second = await start(env)
    const rebooted = new VirtualLock({
      url: returningCreds.url,
      deviceId: returningCreds.username,
      password: returningCreds.password,
      reconnectPeriodMs: 50,
    })
    locks.push(rebooted)
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

  it('exits 0 on SIGTERM', async () => {
    // Scenario: a clean shutdown closes HTTP, MQTT and the database and exits with status 0.
    dataDir = tempDataDir()
    const child = await start({ DATA_DIR: dataDir, MQTT_PORT: '0', ADMIN_API_KEY: ADMIN_KEY })
    expect(await child.kill('SIGTERM')).toBe(0)
    expect(child.output.join('\n')).toContain('SIGTERM: shutting down')
  })
})
