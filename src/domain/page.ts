import { encodeSeqCursor } from './cursor.js'

/** One page of a keyset list, and the opaque cursor of the next page (null on the last one). */
export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** Splits `limit + 1` fetched rows into a page and the cursor of the next one. */
export function toPage<T extends { seq: number }, U>(rows: T[], limit: number, map: (row: T) => U): Page<U> {
  const more = rows.length > limit
  const pageRows = more ? rows.slice(0, limit) : rows
  const last = pageRows[pageRows.length - 1]
  return { items: pageRows.map(map), nextCursor: more && last ? encodeSeqCursor(last.seq) : null }
}
