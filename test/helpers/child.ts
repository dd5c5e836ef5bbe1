import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { testDatabaseEnv } from './store.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ChildLatchkey {
  process: ChildProcess
  httpUrl: string
  mqttUrl: string
  output: string[]
  /** Kills the process without warning and waits for it to be gone. */
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/** A free TCP port on loopback, so a restarted child can keep the broker address its devices know. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Runs `src/main.ts` in a child process, as `npm start` does, and resolves once it is listening. On the PostgreSQL
 * test store, a DATA_DIR brings its own database.
 */
export async function startChild(env: Record<string, string>): Promise<ChildLatchkey> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      MQTT_HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      ...(env.DATA_DIR ? testDatabaseEnv(env.DATA_DIR) : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  const exited = once(child, 'exit')
  const urls = await new Promise<{ httpUrl: string; mqttUrl: string }>((resolve, reject) => {
    let httpUrl: string | undefined
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      output.push(line)
      const http = /latchkey HTTP listening on (\S+?)"/.exec(line)?.[1]
      const mqtt = /latchkey MQTT broker for devices at (\S+?)"/.exec(line)?.[1]
      if (http) httpUrl = http
      if (mqtt && httpUrl) resolve({ httpUrl, mqttUrl: mqtt })
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
