import fc from 'fast-check'
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { guardFrames, MAX_CONNECT_BYTES, type FrameViolation } from '../../broker/frame-guard.js'

/**
 * The frame guard on a stand-in socket whose read() hands out chunks cut anywhere, headers included: whatever the
 * cut, packets within the limit pass unchanged, and the first packet over it stops the reading at its header.
 */

const LIMIT = 2048

class ChunkSocket {
  readonly queue: Buffer[] = []
  bytesRead = 0
  destroyed = false
  read(): Buffer | null {
    const chunk = this.queue.shift() ?? null
    if (chunk) this.bytesRead += chunk.length
    return chunk
  }
  unshift(chunk: Buffer): void {
    this.bytesRead -= chunk.length
    this.queue.unshift(chunk)
  }
  destroy(): void {
    this.destroyed = true
  }
}

function varint(length: number): number[] {
  const bytes: number[] = []
  do {
    let byte = length % 128
    length = Math.floor(length / 128)
    if (length > 0) byte |= 0x80
    bytes.push(byte)
  } while (length > 0)
  return bytes
}

/** A packet of `type` whose whole size (header included) is about `size`; the body is filler. */
function packet(type: number, bodyLength: number): Buffer {
  return Buffer.concat([Buffer.from([type << 4, ...varint(bodyLength)]), Buffer.alloc(bodyLength, 0x61)])
}

/** Cuts `data` at the given fractions. */
function cut(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * data.length)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const point of [...points, data.length]) {
    if (point > from) chunks.push(data.subarray(from, point))
    from = point
  }
  return chunks
}

/** Feeds the chunks through the guard as the broker would: read until null, accepting after the CONNECT. */
function run(chunks: Buffer[]) {
  // The guard wraps the prototype's read(), as it does net.Socket's.
  const socket = new ChunkSocket()
  const violations: FrameViolation[] = []
  const guard = guardFrames(socket as unknown as Socket, {
    maxPacketBytes: LIMIT,
    onViolation: (violation) => violations.push(violation),
  })
  socket.queue.push(...chunks)
  const out: Buffer[] = []
  let accepted = false
  for (let i = 0; i < 10_000; i++) {
    const chunk = (socket as unknown as Socket).read() as Buffer | null
    if (chunk) out.push(chunk)
    else if (!accepted && !socket.destroyed && socket.queue.length > 0) {
      // Holding after the CONNECT: the broker sends CONNACK, then reads on.
      accepted = true
      guard.accept()
    } else break
  }
  return { out: Buffer.concat(out), violations, destroyed: socket.destroyed, bytesRead: socket.bytesRead }
}

const body = fc.integer({ min: 0, max: LIMIT - 3 })
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 })

describe('frame guard', () => {
  it('passes every stream of packets within the limits unchanged, however it is cut', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_CONNECT_BYTES - 3 }),
        fc.array(fc.tuple(fc.integer({ min: 2, max: 14 }), body), { maxLength: 8 }),
        cuts,
        (connectBody, rest, at) => {
          const data = Buffer.concat([packet(1, connectBody), ...rest.map(([type, length]) => packet(type, length))])
          const result = run(cut(data, at))
          expect(result.violations).toEqual([])
          expect(result.out.equals(data)).toBe(true)
        },
      ),
      { seed: 0x5eed, numRuns: 300 },
    )
  })

  it('stops at the header of the first packet over the limit, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 2, max: 14 }), body), { maxLength: 5 }),
        fc.integer({ min: LIMIT, max: 200 * 1024 * 1024 }),
        cuts,
        (before, huge, at) => {
          const head = Buffer.concat([packet(1, 10), ...before.map(([type, length]) => packet(type, length))])
          // Only the header and 64 bytes of the huge packet's body are on the wire; that is enough to refuse it.
          const header = Buffer.from([0x30, ...varint(huge)])
          const data = Buffer.concat([head, header, Buffer.alloc(64)])
          const result = run(cut(data, at))
          expect(result.violations).toEqual(['packet_too_large'])
          expect(result.destroyed).toBe(true)
          // Nothing of the huge packet beyond the chunk that carried its header reached the broker.
          expect(result.out.length).toBeLessThanOrEqual(head.length)
        },
      ),
      { seed: 0xb16, numRuns: 300 },
    )
  })

  it('refuses a first packet that is not a CONNECT, and a CONNECT over its own limit', () => {
    expect(run([packet(3, 10)]).violations).toEqual(['not_connect'])
    expect(run([packet(1, MAX_CONNECT_BYTES)]).violations).toEqual(['connect_too_large'])
    expect(run([Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])]).violations).toEqual(['connect_too_large'])
  })

  it('keeps nothing per connection but its state: one read() wrapper for all sockets, each guard apart', () => {
    // Every idle lock holds a guard (docs/performance.md#idle-lock-memory): two sockets share the wrapper, and what
    // one of them reads does not move the other's state.
    const [a, b] = [new ChunkSocket(), new ChunkSocket()]
    const seen: Array<[FrameViolation, unknown]> = []
    const options = {
      maxPacketBytes: LIMIT,
      onViolation: (v: FrameViolation, _d: string, s: unknown) => seen.push([v, s]),
    }
    guardFrames(a as unknown as Socket, options)
    guardFrames(b as unknown as Socket, options)
    expect((a as unknown as Socket).read).toBe((b as unknown as Socket).read)
    expect((a as unknown as Socket).read).not.toBe(ChunkSocket.prototype.read)
    a.queue.push(packet(1, 10))
    b.queue.push(packet(3, 10))
    expect(((a as unknown as Socket).read() as Buffer).length).toBe(12)
    expect((b as unknown as Socket).read()).toBeNull()
    expect(seen).toEqual([['not_connect', b]])
    expect([a.destroyed, b.destroyed]).toEqual([false, true])
  })
})
