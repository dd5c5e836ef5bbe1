import { LatchkeyError } from '../../domain/errors.js'

/** Opaque keyset cursors: the position is a row's `seq`, wrapped so clients do not depend on it. */
export function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ s: seq })).toString('base64url')
}

export function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString())
    if (typeof value === 'object' && value !== null && 's' in value && Number.isSafeInteger(value.s))
      return value.s as number
  } catch {
    // fall through
  }
  throw new LatchkeyError('invalid_input', 'page_cursor is not a cursor this server issued', {
    validation_errors: { page_cursor: { _errors: ['invalid cursor'] } },
  })
}

/** Splits `limit + 1` fetched rows into a page and the cursor of the next one. */
export function toPage<T extends { seq: number }, U>(
  rows: T[],
  limit: number,
  map: (row: T) => U,
): { items: U[]; nextCursor: string | null } {
  const more = rows.length > limit
  const pageRows = more ? rows.slice(0, limit) : rows
  const last = pageRows[pageRows.length - 1]
  return { items: pageRows.map(map), nextCursor: more && last ? encodeCursor(last.seq) : null }
}
