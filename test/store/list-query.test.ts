import { afterAll, describe, expect, it } from 'vitest'
import { InvalidCursorError } from '../../src/domain/cursor.js'
import { openDatabase } from '../../src/store/sqlite/database.js'
import { compare, equals, listPage, oneOf } from '../../src/store/sqlite/list-query.js'

const db = openDatabase(':memory:')
db.exec('CREATE TABLE things (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL)')
const insert = db.prepare('INSERT INTO things (seq, kind, at) VALUES (?, ?, ?)')
for (let seq = 1; seq <= 7; seq++) insert.run(seq, seq % 2 ? 'odd' : 'even', `2026-01-0${seq}`)
afterAll(() => db.close())

type Row = { seq: number; kind: string; at: string }

function all(spec: { order: 'asc' | 'desc'; where: Parameters<typeof listPage>[1]['where']; limit: number }) {
  const seqs: number[][] = []
  let cursor: string | undefined
  for (let pages = 0; pages < 10; pages++) {
    const page = listPage<Row, number>(db, {
      select: 'seq, kind, at',
      from: 'things',
      cursor,
      map: (r) => r.seq,
      ...spec,
    })
    seqs.push(page.items)
    if (page.nextCursor === null) return seqs
    cursor = page.nextCursor
  }
  throw new Error('did not end')
}

describe('list query builder', () => {
  it('pages in seq order either way, the last page without a next cursor', () => {
    // Scenario: 7 rows, pages of 3 → [1,2,3] [4,5,6] [7] ascending and [7,6,5] [4,3,2] [1] descending.
    expect(all({ order: 'asc', where: [], limit: 3 })).toEqual([[1, 2, 3], [4, 5, 6], [7]])
    expect(all({ order: 'desc', where: [], limit: 3 })).toEqual([[7, 6, 5], [4, 3, 2], [1]])
  })

  it('applies the filters given and ignores the ones left out, an empty list included', () => {
    // Scenario: equals, IN, a bound, and absent filters → only the matching rows, across pages.
    const where = [
      equals('kind', 'odd'),
      oneOf('seq', [1, 3, 5, 6]),
      compare('at', '>=', '2026-01-03'),
      equals('x', undefined),
      oneOf('y', []),
    ]
    expect(all({ order: 'asc', where, limit: 1 })).toEqual([[3], [5]])
  })

  it('refuses a cursor it did not issue with InvalidCursorError', () => {
    // Scenario: garbage cursor → InvalidCursorError (each HTTP surface answers 400).
    expect(() =>
      listPage<Row, number>(db, {
        select: 'seq',
        from: 'things',
        where: [],
        order: 'asc',
        cursor: 'garbage',
        limit: 1,
        map: (r) => r.seq,
      }),
    ).toThrow(InvalidCursorError)
  })
})
