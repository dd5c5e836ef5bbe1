import { describe, expect, it } from 'vitest'
import {
  decodeLogCursor,
  decodeSeqCursor,
  encodeLogCursor,
  encodeSeqCursor,
  InvalidCursorError,
} from '../../src/domain/cursor.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

describe('cursor codec', () => {
  it('round-trips both kinds of position', () => {
    // Scenario: encode then decode → the same position; no cursor → the first page.
    expect(decodeSeqCursor(encodeSeqCursor(42))).toBe(42)
    expect(decodeSeqCursor(undefined)).toBeUndefined()
    const position = { time: '2026-01-02T03:04:05.678Z', seq: 7, scheduled: true }
    expect(decodeLogCursor(encodeLogCursor(position))).toEqual(position)
  })

  it('raises InvalidCursorError, not an HTTP error, for anything this server did not issue', () => {
    // Scenario: garbage, JSON of the wrong shape, and a cursor of the other kind → InvalidCursorError each time.
    const log = encodeLogCursor({ time: '2026-01-02T03:04:05.678Z', seq: 7, scheduled: false })
    for (const cursor of ['garbage', b64('x'), b64(null), b64({ s: 1.5 }), b64({ s: '1' }), log.slice(0, -3)]) {
      expect(() => decodeSeqCursor(cursor)).toThrow(InvalidCursorError)
    }
    for (const cursor of [
      'garbage',
      b64({ t: 'yesterday', s: 1, k: 0 }),
      b64({ t: '2026-01-02T03:04:05.678Z', s: 1, k: 2 }),
    ]) {
      expect(() => decodeLogCursor(cursor)).toThrow(InvalidCursorError)
    }
    expect(() => decodeLogCursor(encodeSeqCursor(3))).toThrow(InvalidCursorError)
  })
})
