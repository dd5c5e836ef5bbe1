import type { LogPosition } from './delivery-log.js'

/**
 * The one cursor codec. Cursors are opaque: base64url JSON, so clients cannot lean on their form. A cursor says
 * where a page starts, not what it filters: the filters come with every request. Two positions are encoded: a
 * row's `seq` (the Connect lists, newest or oldest first) and a (time, seq, scheduled) place in the delivery log.
 */

/** A cursor this server did not issue. Raised by the store and the services; each API surface answers 400. */
export class InvalidCursorError extends Error {
  constructor() {
    super('invalid cursor')
    this.name = 'InvalidCursorError'
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

function encode(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function decode(cursor: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>
  } catch {
    // not JSON: fall through
  }
  throw new InvalidCursorError()
}

export function encodeSeqCursor(seq: number): string {
  return encode({ s: seq })
}

/** Undefined for no cursor (the first page); throws InvalidCursorError for anything this server did not issue. */
export function decodeSeqCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined
  const { s } = decode(cursor)
  if (typeof s === 'number' && Number.isSafeInteger(s)) return s
  throw new InvalidCursorError()
}

export function encodeLogCursor(position: LogPosition): string {
  return encode({ t: position.time, s: position.seq, k: position.scheduled ? 1 : 0 })
}

/** Throws InvalidCursorError for anything this server did not issue. */
export function decodeLogCursor(cursor: string): LogPosition {
  const { t, s, k } = decode(cursor)
  if (typeof t === 'string' && ISO.test(t) && typeof s === 'number' && Number.isSafeInteger(s) && (k === 0 || k === 1))
    return { time: t, seq: s, scheduled: k === 1 }
  throw new InvalidCursorError()
}
