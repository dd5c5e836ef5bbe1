import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { testDatabaseEnv } from './store.js'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ChildLatchkey {
  process: ChildProcess
  /** The bound addresses, read from the start-up log lines (the child listens on port 0 unless told otherwise). */
  httpUrl: string
  mqttUrl: string
  output: string[]
  /** Kills the process without warning and waits for it to be gone. */
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/** The addresses in latchkey's start-up record (a JSON log line off a terminal), or undefined for any other line. */
export function startupBanner(line: string): { httpUrl: string; mqttUrl: string } | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const record = JSON.parse(line) as { http_url?: unknown; mqtt_url?: unknown }
    if (typeof record.http_url !== 'string' || typeof record.mqtt_url !== 'string') return undefined
    return { httpUrl: record.http_url, mqttUrl: record.mqtt_url }
  } catch {
    return undefined
  }
}

/**
 * The environment of a latchkey child: loopback on free ports, JSON logs at info, and (with a DATA_DIR) that data
 * dir's database on the store under test (PostgreSQL under `npm run test:pg`).
 */
export function childEnv(dataDir?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    MQTT_HOST: '127.0.0.1',
    PORT: '0',
    MQTT_PORT: '0',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    ...(dataDir ? { DATA_DIR: dataDir, ...testDatabaseEnv(dataDir) } : {}),
  }
}

/**
 * Runs latchkey's build (`dist/src/main.js`, built by the test run's global setup) in a child process, as `npm
 * start` does, and resolves once it is listening. On the PostgreSQL test store, a DATA_DIR brings its own database.
 */
export async function startChild(env: Record<string, string>): Promise<ChildLatchkey> {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    cwd: ROOT,
    env: { ...childEnv(env.DATA_DIR), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  const exited = once(child, 'exit')
  const urls = await new Promise<{ httpUrl: string; mqttUrl: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      output.push(line)
      const banner = startupBanner(line)
      if (banner) resolve(banner)
    })
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    void exited.then(([code]) =>
      reject(new Error(`latchkey exited with ${String(code)} before listening:\n${output.join('\n')}`)),
    )
  })
  return {
    process: child,
    ...urls,
    output,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await exited
      return code as number | null
    },
  }
}
