/**
 * A private mosquitto (Debian's /usr/sbin/mosquitto, 2.0.x) with the dynamic-security plugin, on a free loopback
 * port in a temp dir, for tests of the external-broker modes (docs/scale-out.md). `scripts/ensure-test-deps.sh`
 * installs the package where it is missing.
 *
 *   const broker = await startMosquitto()   // admin user from `mosquitto_ctrl dynsec init`
 *   … broker.url, broker.admin …
 *   await broker.stop()                     // also removes the temp dir
 *
 * `pause`/`resume` freeze the process (SIGSTOP/SIGCONT): connections stay open and nothing answers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const MOSQUITTO = '/usr/sbin/mosquitto'
export const MOSQUITTO_CTRL = '/usr/bin/mosquitto_ctrl'
export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so'

export interface Mosquitto {
  url: string
  port: number
  /** The broker's process id (to read its CPU use). */
  pid: number
  dir: string
  admin: { username: string; password: string }
  /** Everything mosquitto has logged so far. */
  log(): string
  pause(): void
  resume(): void
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Resolves once mosquitto logs that it runs; rejects if it exits first. */
function running(child: ChildProcess, output: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (/mosquitto version \S+ running/.test(output())) {
        child.stdout?.off('data', check)
        child.stderr?.off('data', check)
        child.off('exit', exited)
        resolve()
      }
    }
    const exited = (code: number | null) => reject(new Error(`mosquitto exited (${code}) before running:\n${output()}`))
    child.stdout?.on('data', check)
    child.stderr?.on('data', check)
    child.once('exit', exited)
    check()
  })
}

async function startOnce(dir: string, admin: { username: string; password: string }): Promise<Mosquitto> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      // TCP_NODELAY on its clients' sockets (docs/scale-out.md#broker-set-up).
      'set_tcp_nodelay true',
      `plugin ${DYNSEC_PLUGIN}`,
      `plugin_opt_config_file ${join(dir, 'dynsec.json')}`,
      // Run as root, mosquitto would drop to user `mosquitto`, which cannot write the temp dir.
      'user root',
      'persistence false',
      // stderr is unbuffered; stdout to a pipe would hold the start-up lines back.
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      '',
    ].join('\n'),
  )
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const collect = (chunk: Buffer) => {
    // Bounded: the last 64 KiB are enough to read a failure.
    output = (output + chunk.toString()).slice(-65_536)
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    await running(child, () => output)
  } catch (error) {
    child.kill('SIGKILL')
    await exited
    throw error
  }
  let stopping: Promise<void> | undefined
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    dir,
    admin,
    log: () => output,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT')
          child.kill('SIGTERM')
          await exited
        }
        rmSync(dir, { recursive: true, force: true })
      })()),
  }
}

/** Starts mosquitto with a fresh dynsec file whose admin is `admin`; a port taken in between is retried twice. */
export async function startMosquitto(): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-mosquitto-'))
  chmodSync(dir, 0o700)
  const admin = { username: 'latchkey-admin', password: 'admin-password-0123456789' }
  try {
    await promisify(execFile)(MOSQUITTO_CTRL, [
      'dynsec',
      'init',
      join(dir, 'dynsec.json'),
      admin.username,
      admin.password,
    ])
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await startOnce(dir, admin)
      } catch (error) {
        lastError = error
        if (!/Address already in use/.test(String(error))) break
      }
    }
    throw lastError
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}
