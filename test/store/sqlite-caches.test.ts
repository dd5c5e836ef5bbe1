import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { newId } from '../../src/app/ids.js'
import { expire } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { addDevice } from '../helpers/store.js'

// What the SQLite store caches of what every lock command reads (docs/scale-out.md#caches): the API key's workspace
// and the device's capabilities and presence. Its one process makes every change, so each is forgotten by the write
// that changes it, and the next request reads the change.

const stores: Array<ReturnType<typeof createSqliteStore>> = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

function setup() {
  const store = createSqliteStore({ filename: ':memory:', newId, now: () => iso(Date.now()) })
  stores.push(store)
  return store
}

/** Statements run (their `get`) while `read` answers. */
async function statementsDuring(read: () => Promise<unknown>): Promise<number> {
  const statement = Object.getPrototypeOf(new Database(':memory:').prepare('SELECT 1')) as Database.Statement
  const get = vi.spyOn(statement, 'get')
  try {
    await read()
    return get.mock.calls.length
  } finally {
    get.mockRestore()
  }
}

async function seed(store: ReturnType<typeof setup>) {
  const at = iso(Date.now())
  await store.workspaces.create({ workspace_id: 'ws', name: 'cache', created_at: at })
  await store.workspaces.createApiKey({ api_key_id: 'key1', workspace_id: 'ws', name: null, created_at: at }, 'hash1')
  for (const id of ['dev1', 'dev2']) await addDevice(store.devices, 'ws', id)
}

describe('the SQLite caches of API keys and devices', () => {
  it('answers a known key from memory and refuses it from the moment its delete returns', async () => {
    // Scenario: the key is read once, then served without a statement; deleted → refused at once.
    const store = setup()
    await seed(store)
    expect(await store.workspaces.findByKeyHash('hash1')).toBe('ws')
    expect(await statementsDuring(() => store.workspaces.findByKeyHash('hash1'))).toBe(0)
    expect(await store.workspaces.findByKeyHash('nope')).toBeUndefined()
    expect(await statementsDuring(() => store.workspaces.findByKeyHash('nope'))).toBe(1)

    expect(await store.workspaces.deleteApiKey('ws', 'key1')).toBe(true)
    expect(await store.workspaces.findByKeyHash('hash1')).toBeUndefined()
  })

  it("reads a device's new capabilities, presence and deletion at the next request", async () => {
    // Scenario: two devices cached; dev1 may no longer unlock, then comes online, then every device is marked
    // offline (start-up); dev2 is deleted → each change is read by the very next forAction; a foreign workspace's
    // id answers as a missing one.
    const store = setup()
    await seed(store)
    const forAction = async (id: string, workspace = 'ws') => store.devices.forAction?.(workspace, id)
    expect(await forAction('dev1')).toEqual({
      device_id: 'dev1',
      workspace_id: 'ws',
      can_remotely_lock: true,
      can_remotely_unlock: true,
      online: false,
    })
    expect(await statementsDuring(() => forAction('dev1'))).toBe(0)
    expect(await forAction('dev1', 'other')).toBeUndefined()

    expect(await store.devices.update('ws', 'dev1', { can_remotely_unlock: false })).toBe(true)
    expect((await forAction('dev1'))?.can_remotely_unlock).toBe(false)

    await store.devices.change('dev1', () => ({ patch: { online: true }, events: [] }))
    expect((await forAction('dev1'))?.online).toBe(true)
    await store.devices.markAllOffline()
    expect((await forAction('dev1'))?.online).toBe(false)

    expect(await forAction('dev2')).toBeDefined()
    const event = { event_type: 'device.deleted' as const, workspace_id: 'ws', device_id: 'dev2', occurred_at: '' }
    expect(await store.devices.delete('ws', 'dev2', event, (attempt) => expire(attempt, iso(Date.now())))).toEqual([])
    expect(await forAction('dev2')).toBeUndefined()
  })
})
