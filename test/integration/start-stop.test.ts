import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { describe, expect, vi } from 'vitest'
import { childEnv, startChild, type ChildLatchkey } from '../helpers/child.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Exited {
  code: number | null
  stdout: string
  stderr: string
}

/** A process of the test's own, its output collected; `exited` resolves when it is gone. */
interface Spawned {
  process: ChildProcess
  stdout: () => string
  exited: Promise<Exited>
}

function collect(child: ChildProcess): Spawned {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }))
  return { process: child, stdout: () => stdout, exited }
}

const baseEnv = (dataDir: string) => ({ ...childEnv(dataDir), ADMIN_API_KEY: '' })

/**
 * `dataDir`: a fresh data dir, removed afterwards. `main(env)`: latchkey's build in a child process, killed afterwards.
 * `child(env)`: the same, resolved once listening. `npmStart(env)`: `npm start` in a process group of its own, the
 * whole group killed afterwards. `busyPort()`: a loopback port held by a server of the test.
 */
const it = base.extend<{
  dataDir: string
  main: (env: Record<string, string>) => Spawned
  child: (env?: Record<string, string>) => Promise<ChildLatchkey>
  npmStart: () => Spawned
  busyPort: () => Promise<number>
}>({
  dataDir: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    await use(dir)
  },
  main: async ({ dataDir, defer }, use) => {
    await use((env) => {
      const spawned = collect(
        spawn(process.execPath, [SERVER_ENTRY], {
          cwd: ROOT,
          env: { ...baseEnv(dataDir), ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      )
      defer(async () => {
        if (spawned.process.exitCode === null && spawned.process.signalCode === null) spawned.process.kill('SIGKILL')
        await spawned.exited
      })
      return spawned
    })
  },
  child: async ({ dataDir, defer }, use) => {
    await use(async (env = {}) => {
      const child = await startChild({ DATA_DIR: dataDir, ADMIN_API_KEY: '', ...env })
      defer(() => child.kill())
      return child
    })
  },
  npmStart: async ({ dataDir, defer }, use) => {
    await use(() => {
      const spawned = collect(
        spawn('npm', ['start'], {
          cwd: ROOT,
          env: baseEnv(dataDir),
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        }),
      )
      defer(async () => {
        // Everything npm started is in its process group: nothing survives the test.
        try {
          process.kill(-(spawned.process.pid as number), 'SIGKILL')
        } catch {
          // The group is gone already.
        }
        await spawned.exited
      })
      return spawned
    })
  },
  busyPort: async ({ defer }, use) => {
    await use(async () => {
      const server: Server = createServer()
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      defer(() => new Promise<void>((resolve) => server.close(() => resolve())))
      return (server.address() as AddressInfo).port
    })
  },
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * An HTTP request whose body never comes: once the server answered `100 Continue` it is in flight, and closing the
 * HTTP server waits for it, so shutdown cannot finish on its own.
 */
async function stuckRequest(httpUrl: string): Promise<Socket> {
  const { hostname, port } = new URL(httpUrl)
  const socket = connect(Number(port), hostname)
  await once(socket, 'connect')
  socket.write(
    'POST /devices/list HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n' +
      'Expect: 100-continue\r\n\r\n',
  )
  const [chunk] = (await once(socket, 'data')) as [Buffer]
  expect(chunk.toString()).toMatch(/^HTTP\/1\.1 100 Continue/)
  return socket
}

describe('a port in use', () => {
  it('fails with one line naming PORT, and the next start still shows the credentials', async ({
    main,
    child,
    busyPort,
    dataDir,
    defer,
  }) => {
    // Scenario: the first start creates the database, then cannot open PORT; the second start succeeds.
    const port = await busyPort()
    const failed = await main({ PORT: String(port) }).exited
    expect(failed.code).toBe(1)
    expect(failed.stderr.trim().split('\n')).toEqual([
      `latchkey failed to start: PORT: 127.0.0.1:${port} is already in use; stop what holds it or set PORT to a free port`,
    ])
    const creds = JSON.parse(readFileSync(`${dataDir}/bootstrap.json`, 'utf8')) as Record<string, string>
    expect(creds.api_key).toMatch(/^seam_/)

    const second = await child()
    expect(second.output.join('\n')).toContain(creds.api_key)
    expect(second.output.join('\n')).toContain(creds.admin_api_key)
    expect(await second.kill('SIGTERM')).toBe(0)

    // Shown once a start completed: not again.
    const third = await child()
    defer(() => third.kill())
    expect(third.output.join('\n')).not.toContain(creds.api_key)
  })

  it('fails with one line naming MQTT_PORT', async ({ main, busyPort }) => {
    // Scenario: the embedded broker's port is taken.
    const port = await busyPort()
    const failed = await main({ MQTT_PORT: String(port) }).exited
    expect(failed.code).toBe(1)
    expect(failed.stderr.trim().split('\n')).toEqual([
      `latchkey failed to start: MQTT_PORT: 127.0.0.1:${port} is already in use; stop what holds it or set MQTT_PORT to a free port`,
    ])
  })
})

describe('signals', () => {
  it('SIGTERM to `npm start` stops latchkey itself', async ({ npmStart }) => {
    // Scenario: a supervisor signals the npm process; the node process behind it must not be left running.
    const npm = npmStart()
    await vi.waitFor(() => expect(npm.stdout()).toContain('latchkey started'), { timeout: 30_000 })
    const pid = Number(/"pid":(\d+).*latchkey started/.exec(npm.stdout())?.[1])
    expect(pid).toBeGreaterThan(0)
    expect(pid).not.toBe(npm.process.pid)
    npm.process.kill('SIGTERM')
    const { code } = await npm.exited
    expect(code).toBe(0)
    expect(npm.stdout()).toContain('SIGTERM: shutting down')
    // npm exits once its child has; the node process is gone, not orphaned.
    expect(alive(pid)).toBe(false)
  }, 60_000)

  it('exits 1 when shutdown outlives SHUTDOWN_TIMEOUT_MS', async ({ child, defer }) => {
    // Scenario: a request in flight never finishes, so closing HTTP never ends.
    const running = await child({ SHUTDOWN_TIMEOUT_MS: '300' })
    const socket = await stuckRequest(running.httpUrl)
    defer(() => socket.destroy())
    expect(await running.kill('SIGTERM')).toBe(1)
    expect(running.output.join('\n')).toContain('shutdown did not finish within 300 ms')
  })

  it('a second signal during shutdown exits at once', async ({ child, defer }) => {
    // Scenario: shutdown is stuck (deadline a minute away); the operator presses Ctrl-C again.
    const running = await child({ SHUTDOWN_TIMEOUT_MS: '60000' })
    const socket = await stuckRequest(running.httpUrl)
    defer(() => socket.destroy())
    const exited = once(running.process, 'exit')
    // Two at once, as Ctrl-C under `npm start` arrives (from the terminal and from npm): taken as one.
    running.process.kill('SIGTERM')
    running.process.kill('SIGTERM')
    await vi.waitFor(() => expect(running.output.join('\n')).toContain('a second SIGTERM or SIGINT exits at once'), {
      timeout: 5000,
    })
    expect(running.process.exitCode).toBeNull()
    expect(running.output.join('\n')).toContain('SIGTERM: shutting down')
    running.process.kill('SIGINT')
    const [code] = await exited
    expect(code).toBe(130)
    expect(running.output.join('\n')).toContain('SIGINT during shutdown: exiting now')
  })
})
