/**
 * The shared engines of a local cluster (docs/scale-out.md#several-instances): a private PostgreSQL 15 with a
 * `latchkey` database and a private mosquitto with dynamic security, both from Debian's packages, on free loopback
 * ports in temp dirs, and the environment every latchkey instance on them shares. Used by `npm run cluster` and by
 * the benchmark's two-instance case.
 *
 *   const services = await startClusterServices()
 *   … spawn instances with { ...services.env, PORT, INSTANCE_ID, DATA_DIR } …
 *   await services.stop()   // also on failure; stopNow() is the synchronous last resort of an exit handler
 */
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import pg from 'pg'
import { startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.js'
import { startTestPostgres, type TestPostgres } from './pg-test-server.js'

export interface ClusterServices {
  postgres: TestPostgres
  mosquitto: Mosquitto
  /** The `latchkey` database on the private server (superuser, trusted on loopback). */
  databaseUrl: string
  /** What every instance shares: database, broker, service user, admin key, JWT secret. */
  env: Record<string, string>
  stop(): Promise<void>
  /** Kills mosquitto and stops PostgreSQL synchronously: for an exit or signal handler. */
  stopNow(): void
}

export interface ClusterServicesOptions {
  /** fsync and full_page_writes on (default off: the data is thrown away at the end). */
  durable?: boolean
  synchronousCommit?: boolean
}

export async function startClusterServices(options: ClusterServicesOptions = {}): Promise<ClusterServices> {
  const postgres = await startTestPostgres(options)
  let mosquitto: Mosquitto | undefined
  try {
    const admin = new pg.Client({ connectionString: postgres.url })
    await admin.connect()
    try {
      await admin.query('CREATE DATABASE latchkey')
    } finally {
      await admin.end()
    }
    const databaseUrl = new URL(postgres.url)
    databaseUrl.pathname = '/latchkey'
    mosquitto = await startMosquitto()
    const broker = mosquitto
    let stopping: Promise<void> | undefined
    return {
      postgres,
      mosquitto: broker,
      databaseUrl: databaseUrl.toString(),
      env: {
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl.toString(),
        EMBEDDED_BROKER: 'false',
        MQTT_URL: broker.url,
        MQTT_PUBLIC_URL: broker.url,
        MQTT_SERVICE_USERNAME: broker.admin.username,
        MQTT_SERVICE_PASSWORD: broker.admin.password,
        MQTT_DEVICE_AUTH: 'dynsec',
        ADMIN_API_KEY: `seam_admin_${randomBytes(18).toString('hex')}`,
        JWT_SECRET: randomBytes(32).toString('hex'),
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      },
      stop: () =>
        (stopping ??= (async () => {
          try {
            await broker.stop()
          } finally {
            postgres.stop()
          }
        })()),
      stopNow() {
        try {
          process.kill(broker.pid, 'SIGKILL')
        } catch {
          // already gone
        }
        rmSync(broker.dir, { recursive: true, force: true })
        postgres.stop()
      },
    }
  } catch (error) {
    await mosquitto?.stop()
    postgres.stop()
    throw error
  }
}
