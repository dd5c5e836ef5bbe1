import type { Socket } from 'node:net'

/** Largest CONNECT the broker reads from a client it has not accepted yet (client id, will, username, password). */
export const MAX_CONNECT_BYTES = 4096

export type FrameViolation = 'connect_too_large' | 'not_connect' | 'packet_too_large' | 'malformed_length'

export interface FrameGuardOptions {
  /** Largest packet (fixed header included) read once the client is accepted. */
  maxPacketBytes: number
  /** Called once, just before the socket is destroyed. */
  onViolation: (violation: FrameViolation, detail: string) => void
}

export interface FrameGuard {
  /** The broker sent CONNACK: packets after the CONNECT may now be read, up to maxPacketBytes each. */
  accept(): void
}

const CONNECT = 1
const HEADER = 0
const LENGTH = 1
const BODY = 2

/**
 * Reads each MQTT fixed header as the bytes go by and destroys the socket as soon as a packet announces more than
 * the limit, so the broker never buffers it (docs/mqtt.md, "Limits"). Before CONNACK the only packet read is one
 * CONNECT of at most MAX_CONNECT_BYTES; whatever the client sends after it waits in the socket (bounded by its
 * high-water mark, then TCP flow control) until the connection is accepted.
 *
 * It wraps the socket's own read(), which the broker calls on every 'readable': no extra stream, no copy; per
 * chunk the cost is a few integer operations per packet header, skipping bodies by arithmetic.
 */
export function guardFrames(socket: Socket, options: FrameGuardOptions): FrameGuard {
  const read = Object.getPrototypeOf(socket).read as Socket['read']
  let accepted = false
  /** The CONNECT is complete and CONNACK not sent yet: read nothing more. */
  let holding = false
  let state = HEADER
  let packetType = 0
  let length = 0
  let multiplier = 1
  let lengthBytes = 0
  let remaining = 0
  let violated = false

  const violate = (violation: FrameViolation, detail: string): null => {
    if (!violated) {
      violated = true
      options.onViolation(violation, `${detail}; ${socket.bytesRead} bytes read`)
      socket.destroy()
    }
    return null
  }

  socket.read = function guardedRead(this: Socket, size?: number) {
    // read(0) is the stream's own "fill the buffer" call: it returns nothing to the caller.
    if (size === 0 || violated) return size === 0 ? read.call(this, 0) : null
    if (holding) return null
    const chunk = read.call(this, size) as Buffer | null
    if (chunk === null) return null
    const limit = accepted ? options.maxPacketBytes : MAX_CONNECT_BYTES
    const end = chunk.length
    let i = 0
    while (i < end) {
      if (state === BODY) {
        const step = Math.min(remaining, end - i)
        i += step
        remaining -= step
        if (remaining > 0) break
        state = HEADER
      } else if (state === HEADER) {
        packetType = (chunk[i++] as number) >> 4
        if (!accepted && packetType !== CONNECT)
          return violate('not_connect', `packet type ${packetType} before CONNACK`)
        state = LENGTH
        length = 0
        multiplier = 1
        lengthBytes = 0
        continue
      } else {
        const byte = chunk[i++] as number
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        lengthBytes += 1
        const total = 1 + lengthBytes + length
        if (total > limit) {
          return violate(
            accepted ? 'packet_too_large' : 'connect_too_large',
            `packet type ${packetType} announces at least ${total} bytes, limit ${limit}`,
          )
        }
        if (byte & 0x80) {
          if (lengthBytes === 4) return violate('malformed_length', 'remaining length longer than 4 bytes')
          continue
        }
        remaining = length
        state = remaining > 0 ? BODY : HEADER
        if (state === BODY) continue
      }
      // A packet ended at i.
      if (!accepted) {
        holding = true
        if (i < end) {
          this.unshift(chunk.subarray(i))
          return chunk.subarray(0, i)
        }
        return chunk
      }
    }
    return chunk
  } as Socket['read']

  return {
    accept() {
      accepted = true
      holding = false
    },
  }
}
