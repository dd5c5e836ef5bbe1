import { describe, expect, it } from 'vitest'
import { keyset } from '../../src/store/sqlite/delivery-log-sql.js'

type Key = [time: string, seq: number, scheduled: number]

/** Whether row `r` comes strictly after cursor `c` in a list ordered by (time, seq, scheduled) in `dir`. */
function after(r: Key, c: Key, dir: 'asc' | 'desc'): boolean {
  for (let i = 0; i < 3; i++) {
    if (r[i] !== c[i])
      return dir === 'asc'
        ? (r[i] as number | string) > (c[i] as number | string)
        : (r[i] as number | string) < (c[i] as number | string)
  }
  return false
}

/** What the generated `(time, seq) <op> (?, ?)` says about row `r`. */
function sqlSays(op: string, r: Key, c: Key): boolean {
  const cmp = r[0] !== c[0] ? (r[0] < c[0] ? -1 : 1) : Math.sign(r[1] - c[1])
  return { '<': cmp < 0, '<=': cmp <= 0, '>': cmp > 0, '>=': cmp >= 0 }[op] as boolean
}

describe('keyset conditions', () => {
  it('agree with the (time, seq, scheduled) order for both row kinds, both directions and ties', () => {
    // Scenario: rows around a cursor, equal in time and seq but of the other kind included, every combination.
    const times = ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-01-01T00:00:00.002Z']
    for (const dir of ['asc', 'desc'] as const) {
      for (const cursorKind of [0, 1]) {
        const cursor: Key = [times[1] as string, 5, cursorKind]
        for (const rowKind of [0, 1]) {
          const sql = keyset('t', 'seq', rowKind === 1, dir, {
            time: cursor[0],
            seq: cursor[1],
            scheduled: cursorKind === 1,
          })
          const op = /\) (<=|>=|<|>) \(/.exec(sql?.text ?? '')?.[1] as string
          for (const time of times) {
            for (const seq of [4, 5, 6]) {
              const row: Key = [time, seq, rowKind]
              expect(sqlSays(op, row, cursor), JSON.stringify({ dir, cursor, row })).toBe(after(row, cursor, dir))
            }
          }
        }
      }
    }
    expect(keyset('t', 'seq', false, 'desc', undefined)).toBeUndefined()
  })
})
