import { randomFillSync } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'

/**
 * Every id latchkey mints. Time-ordered UUIDv7: consecutive inserts land at the end of each unique index instead of
 * on random pages, so a group commit dirties a few pages rather than one per row (docs/performance.md).
 *
 * The random bits come from a pool refilled 512 ids at a time: asking the CSPRNG for 16 bytes per id cost more
 * than the rest of the id (a webhook fan-out mints two ids per delivery attempt). Within one millisecond the
 * sequence counts up from a random start, as the `uuid` package does, so ids minted in one process sort in order.
 */

const ID_BYTES = 16
const pool = Buffer.alloc(ID_BYTES * 512)
let next = pool.length
let lastMs = -Infinity
let seq = 0

function randomBytes16(): Buffer {
  if (next + ID_BYTES > pool.length) {
    randomFillSync(pool)
    next = 0
  }
  const bytes = pool.subarray(next, next + ID_BYTES)
  next += ID_BYTES
  return bytes
}

export function newId(): string {
  const random = randomBytes16()
  let msecs = Date.now()
  if (msecs > lastMs) {
    // 31 random bits, the same start `uuid` takes: room to count up within the millisecond.
    seq = (((random[6] as number) & 0x7f) << 24) | ((random[7] as number) << 16) | ((random[8] as number) << 8)
    seq |= random[9] as number
    lastMs = msecs
  } else {
    seq = (seq + 1) | 0
    if (seq === 0) lastMs++
    msecs = lastMs
  }
  return uuidv7({ random, msecs, seq })
}
