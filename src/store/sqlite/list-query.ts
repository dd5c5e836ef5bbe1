import { decodeSeqCursor } from '../../domain/cursor.js'
import { toPage, type Page } from '../../domain/page.js'
import { placeholders } from './context.js'
import type { Db } from './database.js'

/** One condition of a list's WHERE clause; undefined when its filter was not given. */
export interface Condition {
  sql: string
  params: unknown[]
}

/** `column = value`, when a value is given. */
export function equals(column: string, value: unknown): Condition | undefined {
  return value === undefined ? undefined : { sql: `${column} = ?`, params: [value] }
}

/** `column IN (…)`, when a non-empty list is given: an empty list filters nothing. */
export function oneOf(column: string, values: readonly unknown[] | undefined): Condition | undefined {
  return values?.length ? { sql: `${column} IN (${placeholders(values.length)})`, params: [...values] } : undefined
}

/** `column op value`, when a value is given. */
export function compare(column: string, op: '<' | '<=' | '>' | '>=', value: unknown): Condition | undefined {
  return value === undefined ? undefined : { sql: `${column} ${op} ?`, params: [value] }
}

export interface ListSpec<Row extends { seq: number }, T> {
  /** Column list; must include `seq`, the keyset. */
  select: string
  from: string
  where: Array<Condition | undefined>
  /** `desc`: newest first, the next page holds smaller seqs. */
  order: 'asc' | 'desc'
  cursor: string | undefined
  limit: number
  map: (row: Row) => T
}

/**
 * One keyset page of a Connect list: the given conditions, plus `seq` past the cursor's, in seq order, `limit + 1`
 * rows fetched to know whether another page follows. A cursor this server did not issue throws InvalidCursorError.
 */
export function listPage<Row extends { seq: number }, T>(db: Db, spec: ListSpec<Row, T>): Page<T> {
  const after = decodeSeqCursor(spec.cursor)
  const conditions = [...spec.where, compare('seq', spec.order === 'desc' ? '<' : '>', after)].filter(
    (c): c is Condition => c !== undefined,
  )
  const where = conditions.length ? ` WHERE ${conditions.map((c) => c.sql).join(' AND ')}` : ''
  const rows = db
    .prepare<unknown[], Row>(
      `SELECT ${spec.select} FROM ${spec.from}${where} ORDER BY seq${spec.order === 'desc' ? ' DESC' : ''} LIMIT ?`,
    )
    .all(...conditions.flatMap((c) => c.params), spec.limit + 1)
  return toPage(rows, spec.limit, spec.map)
}
