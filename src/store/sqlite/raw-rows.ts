import type Database from 'better-sqlite3'

/**
 * The statement in better-sqlite3's `raw` mode: each row an array of its values, which the caller names by position
 * in one object literal. Otherwise better-sqlite3 names every column of every row through V8's generic property path,
 * the hot path's dearest way to build an object (docs/performance.md#rows-as-arrays). The order the caller relies on
 * is checked here, once, when the statement is prepared.
 */
export function rawColumns<P extends unknown[], T>(
  statement: Database.Statement<P, T>,
  names: readonly string[],
): Database.Statement<P, T> {
  const got = statement.columns().map((column) => column.name)
  if (got.join() !== names.join()) throw new Error(`unexpected columns ${got.join()}; expected ${names.join()}`)
  return statement.raw(true)
}
