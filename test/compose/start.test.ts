import { readFileSync, rmSync } from 'node:fs'
import { test as base, describe, expect } from 'vitest'
import { createStore, storeKind } from '../../src/store/index.js'
import { startTestLatchkey, tempDataDir, type TestLatchkey } from '../helpers/latchkey.js'

const it = base.extend<{ t: TestLatchkey }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  t: async ({}, use) => {
    const t = await startTestLatchkey()
    await use(t)
    await t.close()
  },
})

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version

describe('composition root', () => {
  it('reports the version of package.json in /openapi.json', async ({ t }) => {
    // Scenario: the OpenAPI document's info.version is the package's, not a constant in the code.
    const doc = (await (await fetch(`${t.lk.httpUrl}/openapi.json`)).json()) as { info: { version: string } }
    expect(doc.info.version).toBe(packageVersion)
  })

  it('is ready while up, and close() may be called twice', async ({ t }) => {
    // Scenario: /readyz 200 and the store ready → close twice → both resolve and the store reports not ready.
    expect((await fetch(`${t.lk.httpUrl}/readyz`)).status).toBe(200)
    expect(t.lk.store.ready()).toBe(true)
    await Promise.all([t.lk.close(), t.lk.close()])
    await t.lk.close()
    expect(t.lk.store.ready()).toBe(false)
  })
})

describe('store factory', () => {
  base('chooses PostgreSQL when DATABASE_URL is set, SQLite otherwise', () => {
    // Scenario: the engine follows the configuration alone (docs/operations.md, choosing a store).
    const base = { DATA_DIR: './data', DATABASE_POOL_MAX: 10 }
    expect(storeKind({ ...base, DATABASE_URL: undefined })).toBe('sqlite')
    expect(storeKind({ ...base, DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db' })).toBe('postgres')
  })

  base('opens the configured store with its delivery log, ready until closed', async () => {
    // Scenario: a fresh DATA_DIR → a SQLite store whose delivery log answers; after close it is not ready.
    const dataDir = tempDataDir()
    try {
      const store = await createStore(
        { DATA_DIR: dataDir, DATABASE_URL: undefined, DATABASE_POOL_MAX: 10 },
        { newId: () => 'id', now: () => new Date(0).toISOString() },
      )
      expect(store.ready()).toBe(true)
      expect(await store.deliveryLog.getScheduled(1)).toBeUndefined()
      await store.close()
      expect(store.ready()).toBe(false)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
