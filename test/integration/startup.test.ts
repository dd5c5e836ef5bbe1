import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { startLatchkey } from '../../src/latchkey.js'
import { openDatabase, schemaVersion } from '../../src/store/sqlite/database.js'
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js'
import { it, request, testConfig } from '../helpers/latchkey.js'
import { queryTestDatabase } from '../helpers/store.js'

describe('start-up', () => {
  it('bootstraps a workspace, an API key and an admin key once, in a 0600 file', async ({ dir, defer }) => {
    // Scenario: first start on an empty DATA_DIR without ADMIN_API_KEY, then a restart on the same directory.
    const dataDir = dir()
    const config = { ...testConfig(dataDir), ADMIN_API_KEY: undefined }
    const first = await startLatchkey(config)
    let firstClosed = false
    defer(() => firstClosed || first.close())
    const creds = first.bootstrap
    expect(creds?.api_key).toMatch(/^seam_[0-9][0-9A-Za-z]{31}$/)
    expect(creds?.admin_api_key).toMatch(/^seam_admin_/)
    const file = join(dataDir, 'bootstrap.json')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(creds)
    const ws = await request(first.httpUrl, '/workspaces/get', {}, creds?.api_key ?? '')
    expect(ws.body.workspace.workspace_id).toBe(creds?.workspace_id)
    // As `npm start` does once it has printed them.
    await first.credentialsShown()
    await first.close()
    firstClosed = true

    const second = await startLatchkey(config)
    defer(() => second.close())
    expect(second.bootstrap).toBeUndefined()
    expect(second.generatedAdminKey).toBeUndefined()
    // Both keys from the first start still work; there is still exactly one workspace.
    const listed = await request(second.httpUrl, '/workspaces/list', {}, creds?.admin_api_key ?? '')
    expect(listed.body.workspaces).toHaveLength(1)
    expect((await request(second.httpUrl, '/devices/list', {}, creds?.api_key ?? '')).status).toBe(200)
    // The database holds hashes, never the keys themselves.
    const dump =
      JSON.stringify(await queryTestDatabase(dataDir, 'SELECT * FROM api_keys')) +
      JSON.stringify(await queryTestDatabase(dataDir, 'SELECT * FROM settings'))
    expect(dump).not.toContain(creds?.api_key)
    expect(dump).not.toContain(creds?.admin_api_key)
  })

  it('counts every device offline after a restart until it announces itself', async ({ start, lock }) => {
    // Scenario: a lock is online, latchkey restarts, the lock has not reconnected yet → offline.
    const t = await start({ keep: true })
    const { lock: sim, device } = await lock(t)
    sim.kill()
    await t.close()
    const again = await start({ dataDir: t.dataDir })
    const res = await again.call('/devices/get', { device_id: device.deviceId }, t.apiKey)
    expect(res.body.device.properties.online).toBe(false)
  })

  it('migrates a database written by an older version, keeping its rows', ({ dir }) => {
    // Scenario: a database at schema version 1 is opened by the current code → every migration applied, data kept.
    const dataDir = dir()
    const file = join(dataDir, 'old.db')
    const old = openDatabase(file, MIGRATIONS.slice(0, 1))
    expect(schemaVersion(old)).toBe(1)
    old
      .prepare(
        "INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('w1', 'old', '2025-01-01T00:00:00.000Z')",
      )
      .run()
    old.close()
    const current = openDatabase(file)
    expect(schemaVersion(current)).toBe(MIGRATIONS.length)
    expect(current.prepare('SELECT name FROM workspaces').all()).toEqual([{ name: 'old' }])
    current.close()
  })

  it('refuses a database newer than the code', ({ dir }) => {
    // Scenario: user_version beyond the known migrations → a clear error, not silent damage.
    const dataDir = dir()
    const file = join(dataDir, 'new.db')
    const db = openDatabase(file)
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`)
    db.close()
    expect(() => openDatabase(file)).toThrow(/newer than this latchkey/)
    expect(existsSync(file)).toBe(true)
  })
})
