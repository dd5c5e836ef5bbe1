import type { ServerResponse } from 'node:http'
import type { Bus } from '../../app/bus.js'

/** What a dashboard stream shows; each is sent whole, as one SSE event of that name. */
export const VIEWS = ['devices', 'attempts', 'webhooks'] as const
export type View = (typeof VIEWS)[number]

export interface HubOptions {
  bus: Bus
  /** The current state of one view of one workspace, as sent to the page. */
  snapshot: (workspaceId: string, view: View) => Promise<unknown>
  onError: (error: unknown, context: string) => void
  /** Changes that raise no notification (a webhook created through the API) show within this long. Default 20 s. */
  resyncMs?: number
  /** A client that has not read what it was sent within this long is dropped. Default 30 s. */
  drainTimeoutMs?: number
  /** Coalesces bursts of notifications into one snapshot. Default 50 ms. */
  batchMs?: number
  maxStreamsPerWorkspace?: number
}

interface Stream {
  workspaceId: string
  raw: ServerResponse
  /** Views to send again. At most one entry per view: a slow client costs the same memory as a fast one. */
  dirty: Set<View>
  timer: NodeJS.Timeout | undefined
  flushing: boolean
  closed: boolean
  /** Whether the key the stream was opened with still works; asked at every resync. */
  authorized: () => Promise<boolean>
}

export class TooManyStreams extends Error {}

/**
 * Live dashboard streams (docs/dashboard.md). Bus notifications mark views dirty for the connections of their own
 * workspace only; a connection is sent a fresh snapshot of each dirty view once its socket has drained, so a client
 * that stops reading holds at most one unsent write, never a growing queue.
 */
export class DashboardHub {
  private readonly streams = new Map<string, Set<Stream>>()
  private readonly resync: NodeJS.Timeout
  private readonly unsubscribe: () => void
  private readonly batchMs: number
  private readonly drainTimeoutMs: number
  private readonly maxPerWorkspace: number

  constructor(private readonly options: HubOptions) {
    this.batchMs = options.batchMs ?? 50
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000
    this.maxPerWorkspace = options.maxStreamsPerWorkspace ?? 20
    const { bus } = options
    const attempts = (attempt: { workspace_id: string }) => this.mark(attempt.workspace_id, ['attempts', 'devices'])
    const device = (d: { workspace_id: string }) => this.mark(d.workspace_id, ['devices'])
    const delivery = (a: { workspace_id: string }) => this.mark(a.workspace_id, ['webhooks'])
    const events = (list: Array<{ workspace_id: string }>) => {
      // New events fan out into deliveries and may change devices (lock.locked) and attempts.
      for (const workspaceId of new Set(list.map((e) => e.workspace_id))) this.mark(workspaceId, VIEWS)
    }
    bus.on('attemptChanged', attempts)
    bus.on('attemptSettled', attempts)
    bus.on('deviceChanged', device)
    bus.on('deliveryAttempted', delivery)
    bus.on('eventsCommitted', events)
    this.unsubscribe = () => {
      bus.off('attemptChanged', attempts)
      bus.off('attemptSettled', attempts)
      bus.off('deviceChanged', device)
      bus.off('deliveryAttempted', delivery)
      bus.off('eventsCommitted', events)
    }
    this.resync = setInterval(() => void this.recheck(), options.resyncMs ?? 20_000)
    this.resync.unref()
  }

  get size(): number {
    let n = 0
    for (const set of this.streams.values()) n += set.size
    return n
  }

  /** Takes over an HTTP response as an event stream of one workspace, and sends every view at once. */
  open(workspaceId: string, raw: ServerResponse, authorized: () => Promise<boolean> = async () => true): void {
    let set = this.streams.get(workspaceId)
    if (set && set.size >= this.maxPerWorkspace) throw new TooManyStreams()
    if (!set) this.streams.set(workspaceId, (set = new Set()))
    const stream: Stream = {
      workspaceId,
      raw,
      dirty: new Set(VIEWS),
      timer: undefined,
      flushing: false,
      closed: false,
      authorized,
    }
    set.add(stream)
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    })
    raw.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ workspace_id: workspaceId })}\n\n`)
    raw.on('close', () => this.drop(stream))
    raw.on('error', () => this.drop(stream))
    // Gone before it was taken over: its 'close' has already been emitted.
    if (raw.destroyed || raw.socket?.destroyed) return this.drop(stream)
    void this.flush(stream)
  }

  /** Ends every stream (on shutdown); the pages reconnect to whichever server answers next. */
  close(): void {
    clearInterval(this.resync)
    this.unsubscribe()
    for (const set of this.streams.values()) for (const stream of set) this.end(stream)
    this.streams.clear()
  }

  /** Ends the streams whose key was deleted since they opened, and refreshes every view of the others. */
  private async recheck(): Promise<void> {
    for (const [workspaceId, set] of this.streams) {
      for (const stream of set) {
        const ok = await stream.authorized().catch((error: unknown) => {
          this.options.onError(error, 'dashboard key check')
          return true
        })
        if (!ok) this.end(stream)
      }
      this.mark(workspaceId, VIEWS)
    }
  }

  private mark(workspaceId: string, views: readonly View[]): void {
    const set = this.streams.get(workspaceId)
    if (!set) return
    for (const stream of set) {
      for (const view of views) stream.dirty.add(view)
      if (!stream.flushing && !stream.timer)
        stream.timer = setTimeout(() => {
          stream.timer = undefined
          void this.flush(stream)
        }, this.batchMs)
    }
  }

  private async flush(stream: Stream): Promise<void> {
    if (stream.flushing || stream.closed) return
    stream.flushing = true
    try {
      while (stream.dirty.size > 0 && !stream.closed) {
        const view = stream.dirty.values().next().value as View
        stream.dirty.delete(view)
        const data = await this.options.snapshot(stream.workspaceId, view)
        if (stream.closed) return
        const ok = stream.raw.write(`event: ${view}\ndata: ${JSON.stringify(data)}\n\n`)
        // A client that does not read is cut off rather than buffered for.
        if (!ok && !(await this.drained(stream))) return this.end(stream, true)
      }
    } catch (error) {
      this.options.onError(error, 'dashboard snapshot')
      this.end(stream)
    } finally {
      stream.flushing = false
    }
  }

  private drained(stream: Stream): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        stream.raw.off('drain', onDrain)
        stream.raw.off('close', onClose)
        resolve(ok)
      }
      const onDrain = () => done(true)
      const onClose = () => done(false)
      const timer = setTimeout(() => done(false), this.drainTimeoutMs)
      stream.raw.on('drain', onDrain)
      stream.raw.on('close', onClose)
    })
  }

  private end(stream: Stream, destroy = false): void {
    this.drop(stream)
    if (stream.raw.destroyed) return
    if (destroy) stream.raw.destroy()
    else stream.raw.end()
  }

  private drop(stream: Stream): void {
    if (stream.closed) return
    stream.closed = true
    if (stream.timer) clearTimeout(stream.timer)
    stream.timer = undefined
    const set = this.streams.get(stream.workspaceId)
    set?.delete(stream)
    if (set?.size === 0) this.streams.delete(stream.workspaceId)
  }
}
