import type { Socket } from 'node:net'

/** Largest CONNECT the broker reads from a client it has not accepted yet (client id, will, username, password). */
export const MAX_CONNECT_BYTES = 4096

export type FrameViolation = 'connect_too_large' | 'not_connect' | 'packet_too_large' | 'malformed_length'

export interface FrameGuardOptions {
  /** Largest packet (fixed header included) read once the client is accepted. */
  maxPacketBytes: number
  /** Called once, just before the socket is destroyed. */
  onViolation: (violation: FrameViolation, detail: string, socket: Socket) => void
}

export interface FrameGuard {
  /** The broker sent CONNACK: packets after the CONNECT may now be read, up to maxPacketBytes each. */
  accept(): void
}

const CONNECT = 1
const HEADER = 0
const LENGTH = 1
const BODY = 2

/** Where a socket keeps its guard, for the one shared `guardedRead`. */
const GUARD = Symbol('frameGuard')

type GuardedSocket = Socket & { [GUARD]?: Guard }

/**
 * Reads each MQTT fixed header as the bytes go by and destroys the socket as soon as a packet announces more than
 * the limit, so the broker never buffers it (docs/mqtt.md, "Limits"). Before CONNACK the only packet read is one
 * CONNECT of at most MAX_CONNECT_BYTES; whatever the client sends after it waits in the socket (bounded by its
 * high-water mark, then TCP flow control) until the connection is accepted.
 *
 * It wraps the socket's own read(), which the broker calls on every 'readable': no extra stream, no copy; per
 * chunk the cost is a few integer operations per packet header, skipping bodies by arithmetic. Its state is one
 * object per connection and the wrapper one function for all of them: every idle lock holds a guard, and closures
 * per connection cost several times the state (docs/performance.md#idle-lock-memory).
 */
export function guardFrames(socket: Socket, options: FrameGuardOptions): FrameGuard {
  const guard = new Guard(socket, Object.getPrototypeOf(socket).read as Socket['read'], options)
  ;(socket as GuardedSocket)[GUARD] = guard
  socket.read = guardedRead as Socket['read']
  return guard
}

/** The broker sent CONNACK on this socket (no-op on a socket without a guard). */
export function acceptFrames(socket: Socket): void {
  ;(socket as GuardedSocket)[GUARD]?.accept()
}

function guardedRead(this: GuardedSocket, size?: number): unknown {
  return (this[GUARD] as Guard).read(size)
}

class Guard implements FrameGuard {
  private accepted = false
  /** The CONNECT is complete and CONNACK not sent yet: read nothing more. */
  private holding = false
  private state = HEADER
  private packetType = 0
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private remaining = 0
  private violated = false

  constructor(
    private readonly socket: Socket,
    private readonly socketRead: Socket['read'],
    private readonly options: FrameGuardOptions,
  ) {}

  accept(): void {
    this.accepted = true
    this.holding = false
  }

  private violate(violation: FrameViolation, detail: string): null {
    if (!this.violated) {
      this.violated = true
      this.options.onViolation(violation, `${detail}; ${this.socket.bytesRead} bytes read`, this.socket)
      this.socket.destroy()
    }
    return null
  }

  read(size?: number): unknown {
    const socket = this.socket
    // read(0) is the stream's own "fill the buffer" call: it returns nothing to the caller.
    if (size === 0 || this.violated) return size === 0 ? this.socketRead.call(socket, 0) : null
    if (this.holding) return null
    const chunk = this.socketRead.call(socket, size) as Buffer | null
    if (chunk === null) return null
    const limit = this.accepted ? this.options.maxPacketBytes : MAX_CONNECT_BYTES
    const end = chunk.length
    let i = 0
    while (i < end) {
      if (this.state === BODY) {
        const step = Math.min(this.remaining, end - i)
        i += step
        this.remaining -= step
        if (this.remaining > 0) break
        this.state = HEADER
      } else if (this.state === HEADER) {
        this.packetType = (chunk[i++] as number) >> 4
        if (!this.accepted && this.packetType !== CONNECT)
          return this.violate('not_connect', `packet type ${this.packetType} before CONNACK`)
        this.state = LENGTH
        this.length = 0
        this.multiplier = 1
        this.lengthBytes = 0
        continue
      } else {
        const byte = chunk[i++] as number
        this.length += (byte & 0x7f) * this.multiplier
        this.multiplier *= 128
        this.lengthBytes += 1
        const total = 1 + this.lengthBytes + this.length
        if (total > limit) {
          return this.violate(
            this.accepted ? 'packet_too_large' : 'connect_too_large',
            `packet type ${this.packetType} announces at least ${total} bytes, limit ${limit}`,
          )
        }
        if (byte & 0x80) {
          if (this.lengthBytes === 4) return this.violate('malformed_length', 'remaining length longer than 4 bytes')
          continue
        }
        this.remaining = this.length
        this.state = this.remaining > 0 ? BODY : HEADER
        if (this.state === BODY) continue
      }
      // A packet ended at i.
      if (!this.accepted) {
        this.holding = true
        if (i < end) {
          socket.unshift(chunk.subarray(i))
          return chunk.subarray(0, i)
        }
        return chunk
      }
    }
    return chunk
  }
}
