/**
 * A private, throwaway PostgreSQL 15 for one test or benchmark run: a temp data directory, a free loopback port,
 * the socket inside the temp directory, durability off (the data dies with the run). Run as root (CI), the server
 * runs as the `postgres` OS user, as PostgreSQL refuses root. Installs Debian's `postgresql` when the binaries are
 * missing and apt-get is usable.
 *
 *   tsx scripts/pg-test-server.ts start   # prints the admin URL and the data directory, leaves it running
 *   tsx scripts/pg-test-server.ts stop DIR
 */
import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

export const PG_BIN = '/usr/lib/postgresql/15/bin'

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres: the superuser, trusted on loopback. */
  url: string
  port: number
  dir: string
  stop(): void
  /** Stops the server without removing its data (to play an outage); `start` brings it back on the same port. */
  pause(): void
  resume(): void
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  server.close()
  await once(server, 'close')
  return port
}

function ensureInstalled(): void {
  if (existsSync(join(PG_BIN, 'initdb'))) return
  if (process.getuid?.() !== 0)
    throw new Error(`PostgreSQL 15 is not installed (${PG_BIN}); apt-get install postgresql`)
  execFileSync('apt-get', ['update'], { stdio: 'ignore' })
  execFileSync('apt-get', ['install', '-y', 'postgresql'], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  // The package may create and start a system cluster: this run needs only its private one.
  try {
    execFileSync('pg_ctlcluster', ['15', 'main', 'stop'], { stdio: 'ignore' })
  } catch {
    // none was started
  }
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`apt-get install postgresql did not bring ${PG_BIN}`)
}

/** Runs a PostgreSQL binary as `postgres` when we are root, as ourselves otherwise. */
function pgRun(bin: string, args: string[]): void {
  const file = join(PG_BIN, bin)
  if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { stdio: 'pipe' })
  else execFileSync(file, args, { stdio: 'pipe' })
}

function postgresUid(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
  return { uid, gid }
}

export function controlFor(dir: string, port: number): TestPostgres {
  const data = join(dir, 'data')
  const start = () => pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'])
  const halt = () => {
    if (existsSync(join(data, 'postmaster.pid'))) pgRun('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'])
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stop() {
      try {
        halt()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
    pause: halt,
    resume: start,
  }
}

/**
 * Tests run with fsync, full_page_writes and synchronous_commit off (the data dies with the run). `durable` keeps
 * fsync and full_page_writes on; `synchronousCommit` (default on when durable) is the setting docs/operations.md
 * discusses: off has the durability of the SQLite store (nothing committed is lost when latchkey crashes; the last
 * fraction of a second can be lost when the database server or the machine does).
 */
export async function startTestPostgres(
  options: { durable?: boolean; synchronousCommit?: boolean } = {},
): Promise<TestPostgres> {
  ensureInstalled()
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'))
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUid()
    chownSync(dir, uid, gid)
  }
  const port = await freePort()
  const data = join(dir, 'data')
  pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'])
  // Throwaway data: no fsync unless durable. Enough connections for parallel test files, each with its own pool.
  const settings = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    ...(options.durable ? [] : ['fsync = off', 'full_page_writes = off']),
    `synchronous_commit = ${(options.synchronousCommit ?? options.durable) ? 'on' : 'off'}`,
    'max_connections = 300',
    'shared_buffers = 64MB',
    'log_min_messages = warning',
  ]
  writeFileSync(join(data, 'postgresql.auto.conf'), `${settings.join('\n')}\n`)
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUid()
    chownSync(join(data, 'postgresql.auto.conf'), uid, gid)
  }
  const server = controlFor(dir, port)
  try {
    server.resume()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return server
}

// CLI: start | stop DIR PORT
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const [command, dir, port] = process.argv.slice(2)
  if (command === 'start') {
    const server = await startTestPostgres()
    process.stdout.write(`DATABASE_URL=${server.url}\nPG_TEST_DIR=${server.dir}\nPG_TEST_PORT=${server.port}\n`)
  } else if (command === 'stop' && dir && port) {
    controlFor(dir, Number(port)).stop()
  } else {
    process.stderr.write('usage: tsx scripts/pg-test-server.ts start | stop DIR PORT\n')
    process.exit(2)
  }
}
