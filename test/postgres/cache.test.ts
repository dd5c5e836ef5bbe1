import { randomUUID } from 'node:crypto'
import { describe, expect, vi } from 'vitest'
import { expire } from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'
import type { PostgresStore } from '../../src/store/postgres/index.js'
import { it, seedDevices } from '../helpers/pg-instances.js'

const WAIT = { timeout: 5000, interval: 10 }

/** Reads through `read` until it answers without a statement on the store's pool: the cache holds the entry. */
async function cached(store: PostgresStore, read: () => Promise<unknown>): Promise<void> {
  const pool = vi.spyOn(store.db.pool, 'query')
  try {
    await vi.waitFor(async () => {
      pool.mockClear()
      await read()
      expect(pool).not.toHaveBeenCalled()
    }, WAIT)
  } finally {
    pool.mockRestore()
  }
}

async function seedKey(store: PostgresStore): Promise<{ hash: string; apiKeyId: string }> {
  const at = iso(Date.now())
  await store.workspaces.create({ workspace_id: 'ws', name: 'cache', created_at: at })
  const apiKeyId = randomUUID()
  const hash = `hash-${randomUUID()}`
  await store.workspaces.createApiKey({ api_key_id: apiKeyId, workspace_id: 'ws', name: null, created_at: at }, hash)
  return { hash, apiKeyId }
}

// What each instance caches of the shared database (docs/scale-out.md#caches): two stores on one database.
describe('the PostgreSQL caches of API keys and devices', () => {
  it('an API key revoked through instance B stops authenticating on instance A, which had it cached', async ({
    stores: [a, b],
  }) => {
    // Scenario: A and B both answer the key from their caches; B deletes it → B refuses it as soon as the delete
    // returns, A as soon as B's notification arrives (no timer), and neither reads the key again meanwhile.
    const { hash, apiKeyId } = await seedKey(a)
    await cached(a, () => a.workspaces.findByKeyHash(hash))
    await cached(b, () => b.workspaces.findByKeyHash(hash))
    expect(await a.workspaces.findByKeyHash(hash)).toBe('ws')
    expect(await b.workspaces.deleteApiKey('ws', apiKeyId)).toBe(true)
    expect(await b.workspaces.findByKeyHash(hash)).toBeUndefined()
    await vi.waitFor(async () => expect(await a.workspaces.findByKeyHash(hash)).toBeUndefined(), WAIT)
  })

  it("a device deleted, made unable to unlock or gone offline through B changes what A's requests read", async ({
    stores: [a, b],
    sql,
  }) => {
    // Scenario: two online devices cached by A. Through B: one may no longer unlock, then goes offline; the other
    // is deleted → A reads each change without a timer; a device's `locked` (not cached) is no cue.
    await seedDevices(sql, ['dev1', 'dev2'])
    await cached(a, async () => a.devices.forAction?.('ws', 'dev1'))
    await cached(a, async () => a.devices.forAction?.('ws', 'dev2'))
    expect(await a.devices.forAction?.('other', 'dev1')).toBeUndefined()

    expect(await b.devices.update('ws', 'dev1', { can_remotely_unlock: false })).toBe(true)
    await vi.waitFor(
      async () => expect((await a.devices.forAction?.('ws', 'dev1'))?.can_remotely_unlock).toBe(false),
      WAIT,
    )

    await b.devices.change('dev1', () => ({ patch: { online: false }, events: [] }))
    await vi.waitFor(async () => expect((await a.devices.forAction?.('ws', 'dev1'))?.online).toBe(false), WAIT)

    const event = {
      event_type: 'device.deleted' as const,
      workspace_id: 'ws',
      device_id: 'dev2',
      occurred_at: iso(Date.now()),
    }
    expect(await b.devices.delete('ws', 'dev2', event, (attempt) => expire(attempt, iso(Date.now())))).toEqual([])
    await vi.waitFor(async () => expect(await a.devices.forAction?.('ws', 'dev2')).toBeUndefined(), WAIT)
  })

  it('forgets everything when its LISTEN connection is lost, and serves from the cache again once it is back', async ({
    stores: [a],
    sql,
  }) => {
    // Scenario: A has the key cached; its listening connection is terminated and the key deleted behind its back
    // (no notification: the one a real change sends could be lost the same way) → once A listens again (a second
    // key is served from its cache), A refuses the first key: it forgot everything when the connection was lost.
    const { hash } = await seedKey(a)
    await cached(a, () => a.workspaces.findByKeyHash(hash))
    // Both stores' listening connections: B's may still be on its way up.
    const listening = "FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()"
    await vi.waitFor(async () => expect(await sql(`SELECT count(*)::int AS n ${listening}`)).toEqual([{ n: 2 }]), WAIT)
    expect(await sql(`SELECT count(pg_terminate_backend(pid))::int AS n ${listening}`)).toEqual([{ n: 2 }])
    await sql('DELETE FROM api_keys WHERE key_hash = $1', [hash])
    const other = `hash-${randomUUID()}`
    await a.workspaces.createApiKey(
      { api_key_id: randomUUID(), workspace_id: 'ws', name: null, created_at: iso(Date.now()) },
      other,
    )
    await cached(a, () => a.workspaces.findByKeyHash(other))
    expect(await a.workspaces.findByKeyHash(hash)).toBeUndefined()
  })

  it("an instance is not woken by its own settle notifications, only by other instances'", async ({
    stores: [a, b],
    sql,
  }) => {
    // Scenario: A settles attempts 1 and 3, B settles 2 and 4, in that order → A is told of 2 and 4, B of 1 and 3
    // (A answers its own waiters when its commit returns; reading the attempt back on its notification is waste).
    const heard = { a: [] as string[], b: [] as string[] }
    a.onAttemptSettled?.((id) => heard.a.push(id))
    b.onAttemptSettled?.((id) => heard.b.push(id))
    await vi.waitFor(async () => {
      const listening = await sql(
        "SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN latchkey_attempt_settled' AND datname = current_database()",
      )
      expect(listening).toHaveLength(2)
    }, WAIT)
    const past = iso(Date.now() - 10_000)
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
    await sql(`INSERT INTO workspaces (workspace_id, name, created_at) VALUES ('ws', 'cache', $1)`, [past])
    await sql(
      `INSERT INTO action_attempts (action_attempt_id, workspace_id, device_id, action_type, status, created_at,
         updated_at, sent_at, deadline_at) SELECT id, 'ws', 'dev', 'LOCK_DOOR', 'pending', $2, $2, $2, $2
       FROM unnest($1::text[]) AS id`,
      [ids, past],
    )
    const settle = (attempt: Parameters<typeof expire>[0]) => expire(attempt, iso(Date.now()))
    for (const [i, id] of ids.entries())
      expect((await (i % 2 ? b : a).attempts.transition(id, settle))?.settled).toBe(true)
    // A connection receives notifications in commit order: hearing of 4 means it would have heard of 1–3 by then.
    await vi.waitFor(() => expect(heard.a).toEqual([ids[1], ids[3]]), WAIT)
    await vi.waitFor(() => expect(heard.b).toEqual([ids[0], ids[2]]), WAIT)
  })
})
