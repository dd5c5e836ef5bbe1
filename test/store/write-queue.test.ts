import { describe, expect, it as base } from 'vitest'
import {
  COMMIT_GATE_MAX_WAIT_MS,
  CommitGate,
  openDatabase,
  WriteQueue,
  type Db,
} from '../../src/store/sqlite/database.js'

/** An in-memory database with a `notes` table whose `text` is unique, and its write queue. */
const it = base.extend<{ db: Db; writes: WriteQueue }>({
  // eslint-disable-next-line no-empty-pattern
  db: async ({}, use) => {
    const db = openDatabase(':memory:', ['CREATE TABLE notes (text TEXT NOT NULL UNIQUE)'])
    await use(db)
    db.close()
  },
  writes: async ({ db }, use) => {
    await use(new WriteQueue(db))
  },
})

function insert(db: Db, text: string): () => number {
  return () => Number(db.prepare('INSERT INTO notes (text) VALUES (?)').run(text).lastInsertRowid)
}

function notes(db: Db): string[] {
  return db
    .prepare<[], { text: string }>('SELECT text FROM notes ORDER BY rowid')
    .all()
    .map((row) => row.text)
}

describe('the SQLite write queue (group commit)', () => {
  it('runs the writes of one turn in one transaction and resolves each with its own result', async ({ db, writes }) => {
    // Scenario: three writes queued in one turn → all three run inside one open transaction, each promise resolves
    // with its job's value once committed.
    const inTransaction: boolean[] = []
    const results = await Promise.all(
      ['a', 'b', 'c'].map((text) =>
        writes.run(() => {
          inTransaction.push(db.inTransaction)
          return insert(db, text)()
        }),
      ),
    )
    expect(results).toEqual([1, 2, 3])
    expect(inTransaction).toEqual([true, true, true])
    expect(db.inTransaction).toBe(false)
    expect(notes(db)).toEqual(['a', 'b', 'c'])
  })

  it('rolls back a failing write alone: the others of its transaction commit', async ({ db, writes }) => {
    // Scenario: 'a', then a job that inserts 'x' and then fails on a duplicate 'a', then 'b' → the failing job is
    // rejected and its own 'x' is undone; 'a' and 'b' are committed.
    const outcomes = await Promise.allSettled([
      writes.run(insert(db, 'a')),
      writes.run(() => {
        insert(db, 'x')()
        return insert(db, 'a')()
      }),
      writes.run(insert(db, 'b')),
    ])
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/)
    expect(notes(db)).toEqual(['a', 'b'])
    expect(db.inTransaction).toBe(false)
  })

  it('rolls back a lone failing write whole, and the next turn writes normally', async ({ db, writes }) => {
    // Scenario: one job alone in its turn inserts 'x' and then throws → rejected, 'x' is not kept; a later job commits.
    await expect(
      writes.run(() => {
        insert(db, 'x')()
        throw new Error('refused')
      }),
    ).rejects.toThrow('refused')
    expect(notes(db)).toEqual([])
    await writes.run(insert(db, 'y'))
    expect(notes(db)).toEqual(['y'])
  })

  it('refuses a job that returns a promise: its work would land after the commit', async ({ db, writes }) => {
    // Scenario: an async job beside a plain one → the async one is rejected with a TypeError, the plain one commits.
    const outcomes = await Promise.allSettled([
      writes.run(async () => insert(db, 'late')()),
      writes.run(insert(db, 'now')),
    ])
    expect(outcomes[0]?.status).toBe('rejected')
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/promise/)
    expect(outcomes[1]?.status).toBe('fulfilled')
    // The async job ran its body synchronously up to its first await: that insert is rolled back with it.
    expect(notes(db)).toEqual(['now'])
  })

  it('commits urgent writes when the current task ends, with whatever was queued before them', async ({
    db,
    writes,
  }) => {
    // Scenario: a normal write, then an urgent one, in one task → both committed before the next macrotask.
    const normal = writes.run(insert(db, 'normal'))
    const urgent = writes.run(insert(db, 'urgent'), true)
    await urgent
    expect(notes(db)).toEqual(['normal', 'urgent'])
    await normal
  })
})

/** The checkpointer's side of a commit gate, as its worker thread takes and lets go of it. */
function checkpointer(gate: CommitGate): { hold(): void; release(): void } {
  const cells = new Int32Array(gate.buffer)
  return {
    hold: () => expect(Atomics.compareExchange(cells, 0, 0, 2)).toBe(0),
    release: () => {
      Atomics.store(cells, 0, 0)
      if (Atomics.exchange(cells, 1, 0) === 1) gate.opened()
    },
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('the write queue and the checkpointer’s commit gate', () => {
  it('holds its commits while the checkpointer holds the gate, and commits as it lets go', async ({ db }) => {
    // Scenario: the checkpointer holds the gate, a write is queued → several loop turns later it is still not
    // committed (nor running); the checkpointer lets go → it commits at once.
    const gate = new CommitGate()
    const writes = new WriteQueue(db, gate)
    const worker = checkpointer(gate)
    worker.hold()
    let committed = false
    const write = writes.run(insert(db, 'a')).then(() => (committed = true))
    for (let i = 0; i < 3; i++) await turn()
    expect(committed).toBe(false)
    expect(notes(db)).toEqual([])
    worker.release()
    await write
    expect(notes(db)).toEqual(['a'])
    // The gate is open again: the next write commits in its own turn.
    await writes.run(insert(db, 'b'))
    expect(notes(db)).toEqual(['a', 'b'])
  })

  it('commits anyway once the checkpointer held the gate too long', async ({ db }) => {
    // Scenario: the checkpointer takes the gate and never lets go → the write commits after
    // COMMIT_GATE_MAX_WAIT_MS all the same.
    const gate = new CommitGate()
    const writes = new WriteQueue(db, gate)
    checkpointer(gate).hold()
    const started = performance.now()
    await writes.run(insert(db, 'a'))
    expect(performance.now() - started).toBeGreaterThanOrEqual(COMMIT_GATE_MAX_WAIT_MS - 1)
    expect(notes(db)).toEqual(['a'])
  })

  it('close() commits what the gate held back', async ({ db }) => {
    const gate = new CommitGate()
    const writes = new WriteQueue(db, gate)
    checkpointer(gate).hold()
    const write = writes.run(insert(db, 'a'))
    await turn()
    expect(notes(db)).toEqual([])
    writes.close()
    expect(notes(db)).toEqual(['a'])
    await write
  })

  it('a commit keeps the checkpointer out until it ends', async ({ db }) => {
    // Scenario: the checkpointer tries to take the gate from inside a job (that is, during a commit) → it cannot;
    // after the commit it can.
    const gate = new CommitGate()
    const writes = new WriteQueue(db, gate)
    const cells = new Int32Array(gate.buffer)
    let during = -1
    await writes.run(() => {
      during = Atomics.compareExchange(cells, 0, 0, 2)
      return insert(db, 'a')()
    })
    expect(during).toBe(1)
    expect(Atomics.compareExchange(cells, 0, 0, 2)).toBe(0)
  })
})
