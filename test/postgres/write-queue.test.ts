import pg from 'pg'
import { describe, expect, it as base, vi } from 'vitest'
import { PgDb, type Tx } from '../../src/store/postgres/database.js'
import { tempDataDir } from '../helpers/latchkey.js'
import { dropTestDatabase, testDatabaseEnv } from '../helpers/store.js'
import { sentStatements } from '../helpers/pg-instances.js'

/** A PgDb on an empty database of its own, with a `counters` table, and the writer's round trips counted. */
const it = base.extend<{ db: PgDb; roundTrips: () => number; answers: () => number }>({
  // eslint-disable-next-line no-empty-pattern
  db: async ({}, use) => {
    const dir = tempDataDir()
    const db = new PgDb({ url: testDatabaseEnv(dir).DATABASE_URL as string, poolMax: 3 })
    await db.exec('CREATE TABLE counters (name text PRIMARY KEY, n integer NOT NULL)')
    await db.exec("INSERT INTO counters VALUES ('a', 0), ('b', 0), ('c', 0)")
    await use(db)
    await db.close()
    dropTestDatabase(dir)
  },
  roundTrips: async ({ db }, use) => {
    // The statements of one round trip are written to the writer's socket at once (pipeline mode, corked): one
    // socket write per round trip.
    type Writes = Record<'_write' | '_writev', (...args: unknown[]) => void>
    const socket = (await writerConnection(db)).stream as unknown as Writes
    const writes = [vi.spyOn(socket, '_write'), vi.spyOn(socket, '_writev')]
    await use(() => writes.reduce((n, spy) => n + spy.mock.calls.length, 0))
    for (const spy of writes) spy.mockRestore()
  },
  answers: async ({ db }, use) => {
    // ReadyForQuery messages the writer's connection receives: the server writes what it has to answer at each.
    const connection = await writerConnection(db)
    let n = 0
    const count = () => n++
    connection.on('readyForQuery', count)
    await use(() => n)
    connection.off('readyForQuery', count)
  },
})

/**
 * The writer's connection, opened by a first write: the one client in pipeline mode (the pool's are not). Opened
 * here, its round trips stay out of what a test counts.
 */
async function writerConnection(db: PgDb): Promise<pg.Connection> {
  const queries = vi.spyOn(pg.Client.prototype, 'query')
  try {
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const writer = queries.mock.contexts.find((client) => (client as pg.Client).pipeline) as pg.Client
    return (writer as unknown as { connection: pg.Connection }).connection
  } finally {
    queries.mockRestore()
  }
}

/** Reads a counter and writes it back plus one: a lost update shows as a count short of the number of jobs. */
async function increment(tx: Tx, name: string): Promise<number> {
  const [row] = await tx.query<{ n: number }>('SELECT n FROM counters WHERE name = ?', [name])
  const next = (row?.n ?? 0) + 1
  tx.write('UPDATE counters SET n = ? WHERE name = ?', [next, name])
  return next
}

async function counts(db: PgDb): Promise<Record<string, number>> {
  const rows = await db.query<{ name: string; n: number }>('SELECT name, n FROM counters ORDER BY name')
  return Object.fromEntries(rows.map((row) => [row.name, row.n]))
}

describe('the PostgreSQL write queue', () => {
  it('sends the reads of a batch of independent jobs together: two round trips for ten jobs', async ({
    db,
    roundTrips,
  }) => {
    // Scenario: ten jobs queued in one turn, each loading a row and writing it back → one round trip with BEGIN and
    // the ten reads, one with the ten writes and COMMIT; every job saw the committed row.
    await db.writes.run(async (tx) => tx.exec('SELECT 1')) // the writer's connection, opened outside the count
    const before = roundTrips()
    const names = ['a', 'b', 'c']
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db.writes.run((tx) => tx.query<{ n: number }>('SELECT n FROM counters WHERE name = ?', [names[i % 3]]), {
          keys: [`job:${i}`],
        }),
      ),
    )
    expect(roundTrips() - before).toBe(2)
    expect(results.map((rows) => rows[0]?.n)).toEqual(Array(10).fill(0))
  })

  it('has the server answer each round trip at once: one ReadyForQuery for its statements, one for its COMMIT', async ({
    db,
    roundTrips,
    answers,
  }) => {
    // Scenario: ten jobs that each read a counter and write it back, in one batch → two round trips (BEGIN and the
    // reads; the writes and COMMIT), answered with three ReadyForQuery messages, not one per statement (22).
    const before = { sent: roundTrips(), answered: answers() }
    const names = ['a', 'b', 'c']
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db.writes.run((tx) => increment(tx, names[i % 3] as string), { keys: [`job:${i}`] }),
      ),
    )
    expect(roundTrips() - before.sent).toBe(2)
    expect(answers() - before.answered).toBe(3)
  })

  it('parses again, on the same connection, the statements of a round that failed', async ({ db }) => {
    // Scenario: a new statement sent before a failing one (parsed, then the round failed) and one sent after it (the
    // server skipped it) → both run afterwards on the writer's connection: neither "already exists" nor "does not
    // exist".
    const parsedThenFailed = "UPDATE counters SET n = n + 1 WHERE name = 'a'"
    const skipped = "UPDATE counters SET n = n + 10 WHERE name = 'b'"
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    await expect(
      db.writes.run(async (tx) => {
        tx.write(parsedThenFailed)
        await tx.exec('UPDATE no_such_table SET n = 1')
      }),
    ).rejects.toThrow(/no_such_table/)
    await expect(
      db.writes.run(async (tx) => {
        tx.write('UPDATE no_such_table SET n = 2')
        await tx.exec(skipped)
      }),
    ).rejects.toThrow(/no_such_table/)
    await db.writes.run(async (tx) => {
      tx.write(parsedThenFailed)
      await tx.exec(skipped)
    })
    expect(await counts(db)).toEqual({ a: 1, b: 10, c: 0 })
  })

  it('runs jobs that share a key one after another, each reading what the one before wrote', async ({
    db,
    roundTrips,
  }) => {
    // Scenario: 5 jobs on counter a (key a) and 5 on b (key b), interleaved, in one batch → no lost update: a = 5,
    // b = 5, each job saw the value before it; the two chains ran side by side (5 rounds of reads, not 10).
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const before = roundTrips()
    const jobs = Array.from({ length: 10 }, (_, i) => {
      const name = i % 2 === 0 ? 'a' : 'b'
      return db.writes.run((tx) => increment(tx, name), { keys: [`counter:${name}`] })
    })
    expect(await Promise.all(jobs)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    expect(await counts(db)).toEqual({ a: 5, b: 5, c: 0 })
    expect(roundTrips() - before).toBe(6)
  })

  it('lets a job that only writes a key read beside the holder before it, and write after it', async ({
    db,
    roundTrips,
  }) => {
    // Scenario: A increments a (key a); T reads b and sets a = 100 without reading a (writes after a); C increments
    // a (key a) → a = 101: T's write landed after A's and before C's read; T's read went with A's, so the batch
    // took three round trips (reads of A and T; writes of A and T with C's read; C's write with COMMIT), not four.
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const before = roundTrips()
    const results = await Promise.all([
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
      db.writes.run(
        async (tx) => {
          const [row] = await tx.query<{ n: number }>("SELECT n FROM counters WHERE name = 'b'")
          tx.write("UPDATE counters SET n = 100 WHERE name = 'a'")
          return row?.n
        },
        { keys: ['counter:b'], writesAfter: ['counter:a'] },
      ),
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
    ])
    expect(results).toEqual([1, 0, 101])
    expect(await counts(db)).toEqual({ a: 101, b: 0, c: 0 })
    expect(roundTrips() - before).toBe(3)
  })

  it('takes a job queued during the first round trip of a batch into that batch, unless it must wait for one of it', async ({
    db,
  }) => {
    // Scenario: job A's read waits for a row lock held by another connection, so the batch's first round trip
    // stays in flight; job B (another key) and job C (A's key) are queued meanwhile; the lock is released → A and
    // B commit in one transaction, C, which would have waited inside it for A, in the next.
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const blocker = await db.pool.connect()
    const sent = sentStatements()
    try {
      await blocker.query("BEGIN; SELECT n FROM counters WHERE name = 'a' FOR UPDATE")
      const a = db.writes.run(
        async (tx) => {
          await tx.query("SELECT n FROM counters WHERE name = 'a' FOR UPDATE")
          return increment(tx, 'a')
        },
        { keys: ['counter:a'], urgent: true },
      )
      await vi.waitFor(async () => {
        const waiting = await db.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        expect(waiting).toHaveLength(1)
      })
      const b = db.writes.run((tx) => increment(tx, 'b'), { keys: ['counter:b'] })
      const c = db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] })
      await blocker.query('COMMIT')
      expect(await Promise.all([a, b, c])).toEqual([1, 1, 2])
      // The blocker's, the batch of A and B, and the next one with C.
      expect(sent.texts().filter((text) => text.startsWith('BEGIN'))).toHaveLength(3)
    } finally {
      sent.restore()
      blocker.release()
    }
  })

  it('runs the jobs without keys alone, one by one, after the keyed jobs of their batch', async ({ db }) => {
    // Scenario: keyed increments of a and b around two keyless jobs that each read a + b and add it to c, all in
    // one batch → each keyless job saw every keyed write (a = 3, b = 2) and the keyless write before it: c = 5, 10.
    const addSum = async (tx: Tx) => {
      const [row] = await tx.query<{ n: number }>(
        "SELECT (SELECT sum(n) FROM counters WHERE name IN ('a', 'b'))::int + (SELECT n FROM counters WHERE name = 'c') AS n",
      )
      tx.write("UPDATE counters SET n = ? WHERE name = 'c'", [row?.n])
      return row?.n
    }
    const results = await Promise.all([
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
      db.writes.run((tx) => increment(tx, 'b'), { keys: ['counter:b'] }),
      db.writes.run(addSum),
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
      db.writes.run(addSum),
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
      db.writes.run((tx) => increment(tx, 'b'), { keys: ['counter:b'] }),
    ])
    expect(results).toEqual([1, 1, 5, 2, 10, 3, 2])
    expect(await counts(db)).toEqual({ a: 3, b: 2, c: 10 })
  })

  it('does not report a job committed when its transaction was aborted by a statement whose error it caught', async ({
    db,
  }) => {
    // Scenario: a job writes b = 7, then reads a missing table and swallows the error; another job increments a →
    // the first is rejected (its write was rolled back: b stays 0), the other commits alone.
    const results = await Promise.allSettled([
      db.writes.run(
        async (tx) => {
          tx.write("UPDATE counters SET n = 7 WHERE name = 'b'")
          await tx.query('SELECT n FROM no_such_table').catch(() => [])
          return 'swallowed'
        },
        { keys: ['counter:b'] },
      ),
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
    ])
    expect(results.map((result) => result.status)).toEqual(['rejected', 'fulfilled'])
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/rolled back/)
    expect(await counts(db)).toEqual({ a: 1, b: 0, c: 0 })
  })

  it('fails one bad job of a side-by-side batch alone; the others commit', async ({ db }) => {
    // Scenario: three jobs in one batch, the second reads a table that does not exist → it rejects with
    // PostgreSQL's error; the first and third commit their increments.
    const results = await Promise.allSettled([
      db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }),
      db.writes.run((tx) => tx.query('SELECT n FROM no_such_table'), { keys: ['other'] }),
      db.writes.run((tx) => increment(tx, 'b'), { keys: ['counter:b'] }),
    ])
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/no_such_table/)
    expect(await counts(db)).toEqual({ a: 1, b: 1, c: 0 })
  })

  it('starts the next batch while the one before waits for its COMMIT; each learns its outcome from its own', async ({
    db,
    roundTrips,
  }) => {
    // Scenario: batch A's COMMIT is held by the database (a deferred trigger waits for an advisory lock the test
    // holds) → batch B, queued meanwhile, is written to the connection before A's COMMIT answers; once the lock is
    // let go, A resolves before B, and B read what A committed.
    await db.exec(`CREATE TABLE held (n integer)`)
    await db.exec(`CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS
      'BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END'`)
    await db.exec(`CREATE CONSTRAINT TRIGGER held_commit AFTER INSERT ON held DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION wait_for_test()`)
    const holder = await db.pool.connect()
    try {
      await holder.query('SELECT pg_advisory_lock(4242)')
      await db.writes.run(async (tx) => tx.exec('SELECT 1'))
      const start = roundTrips()
      const order: string[] = []
      const a = db.writes
        .run(async (tx) => {
          tx.write('INSERT INTO held VALUES (1)')
          return increment(tx, 'a')
        })
        .then((n) => (order.push('a'), n))
      await vi.waitFor(() => expect(roundTrips()).toBeGreaterThanOrEqual(start + 2), { timeout: 5_000 })
      const b = db.writes.run((tx) => increment(tx, 'a'), { keys: ['counter:a'] }).then((n) => (order.push('b'), n))
      await vi.waitFor(() => expect(roundTrips()).toBeGreaterThanOrEqual(start + 3), { timeout: 5_000 })
      expect(order).toEqual([])
      await holder.query('SELECT pg_advisory_unlock(4242)')
      expect(await Promise.all([a, b])).toEqual([1, 2])
      expect(order).toEqual(['a', 'b'])
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()')
      holder.release()
    }
  })
  it('commits jobs whose writes are gated on what they decided on in one round trip, and runs a job again whose gate finds the row moved on', async ({
    db,
    roundTrips,
  }) => {
    // Scenario: three jobs, each "set this counter to 7 if it is still 0"; counter c is at 1 → the batch is one
    // round trip (BEGIN, the three writes, COMMIT); a and b are 7; c's job wrote nothing, learnt it, and ran again,
    // told so, on what it read: its second outcome is the one its caller gets.
    await db.exec("UPDATE counters SET n = 1 WHERE name = 'c'")
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const before = roundTrips()
    const missed: string[] = []
    const setIfZero = (name: string) =>
      db.writes.run(
        async (tx) => {
          if (tx.rerun) return `${name} again: ${await increment(tx, name)}`
          tx.writeIfCurrent(
            'WITH w AS (UPDATE counters SET n = 7 WHERE name = ? AND n = 0 RETURNING 1) SELECT 1 FROM w',
            [name],
            () => missed.push(name),
          )
          return `${name} set`
        },
        { keys: [`counter:${name}`] },
      )
    const results = await Promise.all(['a', 'b', 'c'].map(setIfZero))
    expect(results).toEqual(['a set', 'b set', 'c again: 2'])
    expect(missed).toEqual(['c'])
    expect(await counts(db)).toEqual({ a: 7, b: 7, c: 2 })
    // One round trip for the batch, one for c's second run (its read), one for its write and COMMIT.
    expect(roundTrips() - before).toBe(3)
  })

  it('sends a batch of one statement alone, without BEGIN and COMMIT; a failing one fails its job alone', async ({
    db,
  }) => {
    // Scenario: a lone job writes one row → the writer sends that statement and nothing else; a lone job whose
    // statement fails is rejected with the database's error, and the next job commits.
    await db.writes.run(async (tx) => tx.exec('SELECT 1'))
    const sent = sentStatements()
    await db.writes.run(async (tx) => tx.write("UPDATE counters SET n = 5 WHERE name = 'a'"))
    expect(sent.texts()).toEqual(["UPDATE counters SET n = 5 WHERE name = 'a'"])
    await expect(db.writes.run(async (tx) => tx.write('UPDATE no_such_table SET n = 1'))).rejects.toThrow(
      /no_such_table/,
    )
    await db.writes.run(async (tx) => tx.write("UPDATE counters SET n = 6 WHERE name = 'b'"))
    sent.restore()
    expect(await counts(db)).toEqual({ a: 5, b: 6, c: 0 })
  })
})
