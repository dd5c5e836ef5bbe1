import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { newId } from '../../src/app/ids.js'
import { createAttempt } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import { ATTEMPT_COLUMN_NAMES, attemptRowOf, DEVICE_COLUMN_NAMES, deviceRowOf } from '../../src/store/rows.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { rawColumns } from '../../src/store/sqlite/raw-rows.js'
import { addDevice } from '../helpers/store.js'

// The rows a lock command reads in its write jobs come from SQLite as arrays of values and are named by position
// (docs/performance.md#rows-as-arrays): the names, the positions and the statement's columns must agree.

const stores: Array<ReturnType<typeof createSqliteStore>> = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()))
})

/** Each column's value is its own name: a row named by the wrong position shows it. */
function selfNamed(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name, name]))
}

describe('rows read as arrays', () => {
  it('names every value of an attempt row and of a device row by its column', () => {
    // Scenario: a row whose values are its column names → each key holds its own name, in the columns' order.
    const attempt = attemptRowOf(ATTEMPT_COLUMN_NAMES)
    expect(attempt).toStrictEqual(selfNamed(ATTEMPT_COLUMN_NAMES))
    expect(Object.keys(attempt)).toStrictEqual([...ATTEMPT_COLUMN_NAMES])
    const device = deviceRowOf(DEVICE_COLUMN_NAMES)
    expect(device).toStrictEqual(selfNamed(DEVICE_COLUMN_NAMES))
    expect(Object.keys(device)).toStrictEqual([...DEVICE_COLUMN_NAMES])
  })

  it('refuses a statement whose columns are not the ones named, in their order', () => {
    // Scenario: the same columns swapped, one missing → an error when prepared; the right ones → rows as arrays.
    const db = new Database(':memory:')
    try {
      db.exec('CREATE TABLE t (a INTEGER, b TEXT, c TEXT)')
      db.prepare("INSERT INTO t VALUES (1, 'x', 'y')").run()
      expect(() => rawColumns(db.prepare('SELECT b, a, c FROM t'), ['a', 'b', 'c'])).toThrow(
        'unexpected columns b,a,c; expected a,b,c',
      )
      expect(() => rawColumns(db.prepare('SELECT a, b FROM t'), ['a', 'b', 'c'])).toThrow(/unexpected columns a,b;/)
      expect(rawColumns(db.prepare('SELECT a, b, c FROM t'), ['a', 'b', 'c']).get()).toStrictEqual([1, 'x', 'y'])
    } finally {
      db.close()
    }
  })

  it('reads the same attempt and device through the array statements as through the named ones', async () => {
    // Scenario: a device and an attempt with every optional field set → getById (arrays) equals get (named rows).
    const store = createSqliteStore({ filename: ':memory:', newId, now: () => iso(Date.now()) })
    stores.push(store)
    const at = iso(Date.now())
    await store.workspaces.create({ workspace_id: 'ws', name: 'rows', created_at: at })
    await addDevice(store.devices, 'ws', 'dev1')
    await store.devices.change('dev1', () => ({
      patch: { online: true, locked: false, battery_level: 0.5, firmware_version: '1.2.3', last_seen_at: at },
      events: [],
    }))
    const { attempt, history, events } = createAttempt(
      {
        action_attempt_id: 'att1',
        action_type: 'LOCK_DOOR',
        device_id: 'dev1',
        workspace_id: 'ws',
        now: at,
        deadline_at: at,
        idempotency_key: 'key-1',
        request_hash: 'hash-1',
      },
      true,
    )
    await store.attempts.create(attempt, history, events)

    const device = await store.devices.getById('dev1')
    expect(device?.props).toMatchObject({ online: true, locked: false, battery_level: 0.5, firmware_version: '1.2.3' })
    expect(device).toStrictEqual(await store.devices.get('ws', 'dev1'))
    const read = await store.attempts.getById('att1')
    expect(read).toStrictEqual(attempt)
    expect(read).toStrictEqual(await store.attempts.get('ws', 'att1'))
  })
})
