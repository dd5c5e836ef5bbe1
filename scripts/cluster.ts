/**
 * `npm run cluster`: a local cluster to try several instances (docs/scale-out.md#several-instances): a private
 * PostgreSQL and a mosquitto with dynamic security from Debian's packages, on free loopback ports in temp dirs, and
 * two latchkey instances on them. Prints their URLs and credentials; Ctrl-C (or SIGTERM) stops and removes all of
 * it. The PostgreSQL runs without fsync: the data is thrown away at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { SERVER_ENTRY, SERVER_NODE_FLAGS } from '../src/compose/node-flags.js'
import { startClusterServices, type ClusterServices } from './cluster-services.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Instance {
  name: string
  child: ChildProcess
  httpUrl: string
  dataDir: string
  exited: Promise<unknown>
}

/** Starts latchkey's build (`npm run cluster` builds it first) and resolves with its HTTP URL once its start-up record is logged. */
async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const dataDir = mkdtempSync(join(tmpdir(), `latchkey-cluster-${name}-`))
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, SERVER_ENTRY], {
    cwd: ROOT,
    env: { ...process.env, ...env, DATA_DIR: dataDir, INSTANCE_ID: name, LOG_FORMAT: 'json', PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      try {
        const record = JSON.parse(line) as { http_url?: unknown; level?: number; msg?: unknown }
        if (typeof record.http_url === 'string') resolve(record.http_url)
        else if ((record.level ?? 0) >= 50) console.error(`[${name}] ${String(record.msg)}`)
      } catch {
        // not a log record
      }
    })
    void exited.then(([code]) => reject(new Error(`instance ${name} exited with ${String(code)} before listening`)))
  })
  return { name, child, httpUrl, dataDir, exited }
}

async function main(): Promise<void> {
  let services: ClusterServices | undefined
  const instances: Instance[] = []
  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      for (const instance of instances) if (instance.child.exitCode === null) instance.child.kill('SIGTERM')
      await Promise.all(instances.map((instance) => instance.exited))
      for (const instance of instances) rmSync(instance.dataDir, { recursive: true, force: true })
      await services?.stop()
    })())
  process.once('SIGINT', () => void stop().then(() => process.exit(0)))
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)))
  try {
    services = await startClusterServices()
    const { env, mosquitto } = services
    // One after the other: the first start creates the workspace and writes its key to its bootstrap.json.
    instances.push(await startInstance('a', env))
    instances.push(await startInstance('b', env))
    const first = instances[0] as Instance
    const bootstrap = JSON.parse(readFileSync(join(first.dataDir, 'bootstrap.json'), 'utf8')) as Record<string, string>
    process.stdout.write(
      [
        '',
        'latchkey cluster: two instances on one PostgreSQL and one mosquitto (dynsec)',
        ...instances.map((instance) => `  instance ${instance.name}:   ${instance.httpUrl}`),
        `  MQTT (devices): ${mosquitto.url}`,
        `  PostgreSQL:     ${services.databaseUrl}`,
        `  admin key:      ${env.ADMIN_API_KEY}`,
        `  workspace key:  ${bootstrap.api_key ?? '(see the first instance)'}`,
        `  workspace id:   ${bootstrap.workspace_id ?? ''}`,
        '',
        'Ctrl-C stops everything and removes its data.',
        '',
      ].join('\n'),
    )
  } catch (error) {
    console.error('cluster failed to start:', error instanceof Error ? error.message : error)
    await stop()
    process.exit(1)
  }
}

void main()
