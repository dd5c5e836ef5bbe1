import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, test, vi } from 'vitest'
import { VirtualLock } from '../../simulator/index.js'
import { createDevice } from '../helpers/devices.js'
import { ADMIN_KEY, startTestLatchkey, type TestLatchkey } from '../helpers/latchkey.js'

const BIN = fileURLToPath(new URL('../../bin/latchkey.js', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** A running `latchkey` child: its output so far, and a way to wait for its end (killed after `limitMs`). */
function spawnCli(args: string[], env: Record<string, string>, limitMs = 45_000) {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    // Only what the test gives it: no key or config of the person running the tests leaks in.
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: Run = { code: null, stdout: '', stderr: '' }
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()))
  const limit = setTimeout(() => child.kill('SIGKILL'), limitMs)
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(limit)
      run.code = code
      resolve(run)
    }),
  )
  return { child, run, done }
}

const cli = (args: string[], env: Record<string, string>, limitMs?: number) => spawnCli(args, env, limitMs).done

interface Fixture {
  t: TestLatchkey
  /** A fresh HOME with no config file; `env` points the CLI at the test latchkey with the workspace key. */
  home: string
  env: Record<string, string>
}

const it = test.extend<Fixture>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  t: async ({}, use) => {
    const t = await startTestLatchkey()
    await use(t)
    await t.close()
  },
  // eslint-disable-next-line no-empty-pattern
  home: async ({}, use) => {
    const home = mkdtempSync(join(tmpdir(), 'latchkey-cli-home-'))
    await use(home)
    rmSync(home, { recursive: true, force: true })
  },
  env: async ({ t, home }, use) => {
    await use({ HOME: home, LATCHKEY_URL: t.lk.httpUrl, LATCHKEY_API_KEY: t.apiKey })
  },
})

async function withLock<T>(
  t: TestLatchkey,
  name: string,
  behaviour: ConstructorParameters<typeof VirtualLock>[0]['behaviour'],
  fn: (deviceId: string) => Promise<T>,
): Promise<T> {
  const device = await createDevice(t, name)
  const lock = new VirtualLock({
    url: device.url,
    deviceId: device.deviceId,
    password: device.password,
    reconnectPeriodMs: 50,
    ...(behaviour ? { behaviour } : {}),
  })
  await lock.start()
  try {
    await vi.waitFor(
      async () => {
        const res = await t.call('/devices/get', { device_id: device.deviceId })
        if (!res.body.device.properties.online) throw new Error('not online yet')
      },
      { timeout: 10_000, interval: 10 },
    )
    return await fn(device.deviceId)
  } finally {
    await lock.stop()
  }
}

// Each run starts a Node process with tsx: slow on a loaded machine, hence the longer limits.
describe('latchkey CLI', { timeout: 90_000 }, () => {
  it('creates a device, printing its MQTT credentials once, and lists it as a table and as JSON', async ({ env }) => {
    const created = await cli(['devices', 'create', 'Front door'], env)
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toMatch(/password\s+\S{16,}/)
    expect(created.stdout).toContain('topic_root')

    const listed = await cli(['devices', 'list'], env)
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout.split('\n')[0]).toMatch(/^DEVICE\s+NAME\s+ONLINE\s+LOCKED/)
    expect(listed.stdout).toMatch(/Front door\s+offline/)
    // The secret is printed by `create` only.
    expect(listed.stdout).not.toMatch(/password/)

    const json = await cli(['devices', 'list', '--json'], env)
    expect(json.code).toBe(0)
    const devices = JSON.parse(json.stdout)
    expect(devices.map((d: { display_name: string }) => d.display_name)).toEqual(['Front door'])
  })

  it('locks a simulated lock by name: exit 0 and the settled attempt with its timeline', async ({ t, env }) => {
    await withLock(t, 'Back gate', { sendAccepted: true }, async (deviceId) => {
      const run = await cli(['lock', 'Back gate'], env)
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain(`lock Back gate (${deviceId}): success`)
      for (const step of ['created', 'sent', 'accepted', 'succeeded'])
        expect(run.stdout).toMatch(new RegExp(`\\s${step}\\b`))

      const json = await cli(['unlock', deviceId, '--json'], env)
      expect(json.code, json.stderr).toBe(0)
      const out = JSON.parse(json.stdout)
      expect(out.action_attempt).toMatchObject({ action_type: 'UNLOCK_DOOR', status: 'success', device_id: deviceId })
      expect(out.history.map((h: { kind: string }) => h.kind)).toEqual(['created', 'sent', 'accepted', 'succeeded'])
    })
  })

  it('exits 1 when the attempt fails: a silent lock and a short deadline', async ({ t, env }) => {
    await withLock(t, 'Silent', { silent: 1 }, async () => {
      const run = await cli(['lock', 'Silent', '--timeout-ms', '1000'], env)
      expect(run.code).toBe(1)
      expect(run.stdout).toContain(': error')
      expect(run.stdout).toContain('action_attempt_expired')
    })
  })

  it('refuses a config file that others can read, and reads one of mode 0600', async ({ t, home }) => {
    const path = join(home, '.config', 'latchkey', 'config.json')
    mkdirSync(join(home, '.config', 'latchkey'), { recursive: true })
    writeFileSync(path, JSON.stringify({ url: t.lk.httpUrl, api_key: t.apiKey }))
    chmodSync(path, 0o644)
    const refused = await cli(['devices', 'list'], { HOME: home })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('chmod 600')
    expect(refused.stdout).toBe('')

    chmodSync(path, 0o600)
    const ok = await cli(['devices', 'list', '--json'], { HOME: home })
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout)).toEqual([])

    // LATCHKEY_CONFIG names another file; a missing one is an error, not a silent fallback.
    const missing = await cli(['devices', 'list'], { HOME: home, LATCHKEY_CONFIG: join(home, 'nope.json') })
    expect(missing.code).toBe(2)
  })

  it('says what went wrong through its exit code', async ({ t, env, home }) => {
    const [noKey, badKey, unknownDevice, usage, badOption] = await Promise.all([
      cli(['devices', 'list'], { HOME: home, LATCHKEY_URL: t.lk.httpUrl }),
      cli(['devices', 'list'], { ...env, LATCHKEY_API_KEY: 'seam_wrong' }),
      cli(['lock', 'no such door'], env),
      cli(['lock'], env),
      cli(['devices', 'list', '--frobnicate'], env),
    ])
    expect(noKey.code).toBe(2)
    expect(badKey.code).toBe(3)
    expect(unknownDevice.code).toBe(4)
    expect(usage.code).toBe(2)
    expect(badOption.code).toBe(2)
  })

  it('creates a workspace with the admin key, from the environment', async ({ env }) => {
    const run = await cli(['workspaces', 'create', 'Lab', '--json'], { ...env, LATCHKEY_ADMIN_API_KEY: ADMIN_KEY })
    expect(run.code, run.stderr).toBe(0)
    const out = JSON.parse(run.stdout)
    expect(out.workspace.name).toBe('Lab')
    expect(out.api_key.token).toMatch(/^seam_/)
    // A workspace key cannot.
    const refused = await cli(['workspaces', 'create', 'Lab 2'], env)
    expect(refused.code).toBe(3)
  })

  it('tails events live until interrupted, and lists deliveries', async ({ t, env }) => {
    const tail = spawnCli(['events', 'tail', '--json', '--interval-ms', '100'], env)
    try {
      // The tail follows from the moment it started; the device is created after that.
      await vi.waitFor(() => expect(tail.run.stderr).toContain('following events since'), {
        timeout: 15_000,
        interval: 10,
      })
      const device = await createDevice(t, 'Tail me')
      await vi.waitFor(() => expect(tail.run.stdout).toContain(device.deviceId), { timeout: 10_000, interval: 10 })
      const event = JSON.parse(tail.run.stdout.trim().split('\n')[0] ?? '')
      expect(event).toMatchObject({ event_type: 'device.added', device_id: device.deviceId })
    } finally {
      tail.child.kill('SIGINT')
    }
    const ended = await tail.done
    expect(ended.code).toBe(0)

    const deliveries = await cli(['deliveries', 'list', '--json'], env)
    expect(deliveries.code, deliveries.stderr).toBe(0)
    expect(JSON.parse(deliveries.stdout)).toMatchObject({ data: [] })
  })

  test('serve runs latchkey until SIGTERM; simulate hands over to the simulator', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-cli-serve-'))
    const serve = spawnCli(['serve'], {
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      ADMIN_API_KEY: ADMIN_KEY,
    })
    try {
      await vi.waitFor(() => expect(serve.run.stdout).toMatch(/http:\/\/127\.0\.0\.1:\d+/), {
        timeout: 20_000,
        interval: 10,
      })
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(serve.run.stdout)?.[0]
      const ready = await fetch(`${url}/healthz`)
      expect(ready.status).toBe(200)
    } finally {
      serve.child.kill('SIGTERM')
    }
    expect((await serve.done).code).toBe(0)
    rmSync(dataDir, { recursive: true, force: true })

    const help = await cli(['simulate', '--help'], {})
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('npm run simulate')
  })
})
