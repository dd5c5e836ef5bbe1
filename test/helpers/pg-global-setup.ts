import { startTestPostgres, type TestPostgres } from '../../scripts/pg-test-server.js'

/**
 * Vitest global setup: with LATCHKEY_TEST_STORE=postgres, one private PostgreSQL for the whole run, stopped (and
 * its data directory removed) at the end. Test workers find it through LATCHKEY_TEST_PG_URL.
 */
let server: TestPostgres | undefined

export async function setup(): Promise<void> {
  if (process.env.LATCHKEY_TEST_STORE !== 'postgres') return
  server = await startTestPostgres()
  process.env.LATCHKEY_TEST_PG_URL = server.url
}

export async function teardown(): Promise<void> {
  server?.stop()
  server = undefined
}
