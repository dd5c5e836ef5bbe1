import { Agent, type Dispatcher } from 'undici'
import type { Clock, TimerHandle } from '../domain/clock.js'
import { unsendableUrl } from '../domain/webhook.js'
import type { SendFailure } from '../domain/webhook-delivery.js'
import type { UrlGuard } from './ssrf.js'

/**
 * The webhook HTTP client: undici's keep-alive pools (TCP_NODELAY is undici's default), one POST per attempt.
 * Every new connection resolves its host through the SSRF guard's `lookup`, so the address checked is the address
 * connected to; hosts written as IP literals skip DNS and are checked here instead.
 */

export const MAX_RESPONSE_BODY_BYTES = 64 * 1024

export interface OutboundRequest {
  url: string
  headers: Record<string, string>
  body: string
}

export interface HttpResponse {
  code: number
  headers: Record<string, string | string[]>
  /** The first 64 KiB of the response body. */
  body: string
}

/** A failure before any status line arrived; a status line, whatever its code, is a `response`. */
export type TransportFailure = Exclude<SendFailure, { stage: 'http_status' }>

export type SendOutcome =
  | { kind: 'response'; response: HttpResponse; durationMs: number }
  | { kind: 'no_response'; failure: TransportFailure; durationMs: number }

export interface HttpSender {
  /** Never rejects: whatever goes wrong is a `no_response` outcome. */
  send(request: OutboundRequest): Promise<SendOutcome>
  /** Aborts what is in flight and closes the connections. */
  close(): Promise<void>
}

interface Target {
  origin: string
  path: string
  /** Credentials written into the URL, sent as Basic auth. */
  authorization?: string
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { cause?: unknown }).cause
  if (cause instanceof Error && error.message === 'fetch failed') return messageOf(cause)
  return error.message || String((error as { code?: string }).code ?? 'network error')
}

/** The `code` of an error or of one of its causes that `match` selects. */
function codeIn(error: unknown, match: (code: string) => boolean): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && match(code)) return code
  }
  return undefined
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/** A request that produced no status line, by stage. */
function transportFailure(error: unknown): TransportFailure {
  const message = messageOf(error)
  if (codeIn(error, (code) => code === 'ERR_WEBHOOK_ADDRESS_REFUSED')) return { stage: 'refused', message }
  if (codeIn(error, (code) => TIMEOUT_CODES.has(code))) return { stage: 'timeout', message }
  return { stage: 'network', message, code: codeIn(error, () => true) }
}

/** Where to send, or why nothing can be sent there. Throws nothing. */
function parseTarget(raw: string, guard: UrlGuard): Target | TransportFailure {
  const problem = unsendableUrl(raw)
  if (problem) return { stage: 'invalid_url', message: `invalid URL: ${problem}` }
  const url = new URL(raw)
  const why = guard.literalRefusal(url.hostname)
  if (why) return { stage: 'refused', message: `refused: ${why}` }
  const target: Target = { origin: `${url.protocol}//${url.host}`, path: `${url.pathname}${url.search}` }
  if (url.username) {
    // unsendableUrl checked that both decode.
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    target.authorization = `Basic ${Buffer.from(user).toString('base64')}`
  }
  return target
}

function isTarget(value: Target | TransportFailure): value is Target {
  return 'origin' in value
}

/** Response header names and values as undici's `request` gives them: lowercased names, repeats as arrays. */
function parseHeaders(raw: ReadonlyArray<Buffer | string>): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase()
    const value = text(raw[i + 1])
    const seen = Object.hasOwn(headers, name) ? headers[name] : undefined
    if (seen === undefined) {
      // A header named `__proto__` is data like any other, not the object's prototype.
      if (name === '__proto__')
        Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true })
      else headers[name] = value
    } else if (Array.isArray(seen)) seen.push(value)
    else headers[name] = [seen, value]
  }
  return headers
}

function text(part: Buffer | string | undefined): string {
  return typeof part === 'string' ? part : (part?.toString('latin1') ?? '')
}

/**
 * One POST through undici's dispatch API, as its handler: the response arrives in callbacks, with no body stream,
 * async iterator or AbortSignal per request, and no closure per callback (together they cost about a tenth of
 * latchkey's CPU in a webhook fan-out, docs/performance.md#webhook-fan-out). Resolves once, with the status line and
 * at most MAX_RESPONSE_BODY_BYTES of body; stopping early aborts the request, and undici replaces that connection.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly started = performance.now()
  private head: { code: number; headers: Record<string, string | string[]> } | undefined
  private chunks: Buffer[] = []
  private size = 0
  private abortRequest: ((reason: Error) => void) | undefined
  /** Why latchkey stopped the request (timeout, shutdown), which wins over the error undici then reports. */
  private stopped: { reason: Error; timedOut: boolean } | undefined
  private done = false

  constructor(
    /** The sender's requests in flight, in the order they started: deadline order, as all share one timeout. */
    private readonly active: Set<Exchange>,
    /** When the request times out, on the sender's clock. */
    readonly deadline: number,
    private readonly resolve: (outcome: SendOutcome) => void,
  ) {
    active.add(this)
  }

  private finish(outcome: SendOutcome): void {
    if (this.done) return
    this.done = true
    this.active.delete(this)
    this.resolve(outcome)
  }

  /** The outcome is the status line: a body still streaming at the deadline is kept as far as it came. */
  private answered(head: NonNullable<Exchange['head']>): void {
    const body =
      this.chunks.length === 1
        ? (this.chunks[0] as Buffer).toString('utf8')
        : Buffer.concat(this.chunks).toString('utf8')
    this.finish({
      kind: 'response',
      response: { code: head.code, headers: head.headers, body },
      durationMs: performance.now() - this.started,
    })
  }

  failed(error: unknown): void {
    if (this.head) return this.answered(this.head)
    const stopped = this.stopped
    const failure: TransportFailure = stopped?.timedOut
      ? { stage: 'timeout', message: stopped.reason.message }
      : transportFailure(stopped ? stopped.reason : error)
    this.finish({ kind: 'no_response', failure, durationMs: performance.now() - this.started })
  }

  stop(reason: Error, timedOut = false): void {
    if (this.done || this.stopped) return
    this.stopped = { reason, timedOut }
    // Nothing more to time out or to stop on close: only undici's report of the abort is still to come.
    this.active.delete(this)
    if (this.abortRequest) this.abortRequest(reason)
    else this.failed(reason)
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortRequest = abort
    if (this.stopped) abort(this.stopped.reason)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx: informational, the real status line follows.
    if (statusCode < 200) return true
    this.head = { code: statusCode, headers: parseHeaders(rawHeaders) }
    return true
  }

  onData(chunk: Buffer): boolean {
    // Already answered (over the limit, or timed out): what undici still had buffered is not wanted.
    if (this.done) return false
    this.chunks.push(chunk.subarray(0, MAX_RESPONSE_BODY_BYTES - this.size))
    this.size += chunk.length
    if (this.size < MAX_RESPONSE_BODY_BYTES) return true
    if (this.head) this.answered(this.head)
    this.abortRequest?.(new Error('response body over the limit'))
    return false
  }

  onComplete(): void {
    if (this.head) this.answered(this.head)
    else this.failed(new Error('the response ended without a status line'))
  }

  onError(error: Error): void {
    this.failed(error)
  }
}

export interface HttpSenderOptions {
  timeoutMs: number
  clock: Clock
  guard: UrlGuard
  /**
   * Requests one connection carries at once (HTTP/1.1 pipelining, docs/webhooks.md#pipelining); 1, the default: one
   * at a time, a connection per request in flight.
   */
  pipelining?: number
}

export function createHttpSender(options: HttpSenderOptions): HttpSender {
  const pipelining = options.pipelining ?? 1
  /**
   * With pipelining, undici holds a request that is not `idempotent` until its connection is idle, and a `blocking`
   * one holds those behind it until its response headers arrive: neither would share a connection. Marked idempotent,
   * the requests behind one whose connection fails are sent again on a new connection (docs/webhooks.md#pipelining).
   */
  const shared = pipelining > 1 ? { idempotent: true, blocking: false } : {}
  const agent = new Agent({
    connect: { lookup: options.guard.lookup },
    pipelining,
    keepAliveTimeout: 30_000,
    // The dispatcher bounds concurrency per webhook and overall; undici's own backstops use real time.
    headersTimeout: options.timeoutMs + 1000,
    bodyTimeout: options.timeoutMs + 1000,
  })
  const active = new Set<Exchange>()
  /**
   * One timer for every request in flight, set for the oldest one's deadline: all share one timeout, so the oldest
   * times out first. When it fires, whatever is past its deadline stops, and the timer is set for the next.
   */
  let timer: { handle: TimerHandle; at: number } | undefined

  function arm(): void {
    const oldest = active.values().next().value
    if (timer && oldest && timer.at <= oldest.deadline) return
    if (timer) options.clock.clearTimeout(timer.handle)
    timer = undefined
    if (!oldest) return
    const at = oldest.deadline
    timer = { handle: options.clock.setTimeout(expire, Math.max(0, at - options.clock.now())), at }
  }

  function expire(): void {
    timer = undefined
    const now = options.clock.now()
    for (const exchange of active) {
      if (exchange.deadline > now) break
      exchange.stop(new Error(`timed out after ${options.timeoutMs} ms`), true)
    }
    arm()
  }

  const targets = new Map<string, Target | TransportFailure>()

  function target(url: string): Target | TransportFailure {
    let found = targets.get(url)
    if (found === undefined) {
      if (targets.size >= 10_000) targets.clear()
      targets.set(url, (found = parseTarget(url, options.guard)))
    }
    return found
  }

  function exchange(to: Target, request: OutboundRequest): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      const handler = new Exchange(active, options.clock.now() + options.timeoutMs, resolve)
      if (!timer) arm()
      const headers = to.authorization ? { ...request.headers, authorization: to.authorization } : request.headers
      try {
        agent.dispatch(
          { origin: to.origin, path: to.path, method: 'POST', headers, body: request.body, ...shared },
          handler,
        )
      } catch (error) {
        handler.failed(error)
      }
    })
  }

  return {
    // Not async: the exchange's own promise is the answer, with no second one wrapped around it per request.
    send(request) {
      try {
        const to = target(request.url)
        if (!isTarget(to)) return Promise.resolve({ kind: 'no_response', failure: to, durationMs: 0 })
        return exchange(to, request)
      } catch (error) {
        return Promise.resolve({
          kind: 'no_response',
          failure: { stage: 'internal', message: `internal error: ${messageOf(error)}` },
          durationMs: 0,
        })
      }
    },

    async close() {
      for (const exchange of [...active]) exchange.stop(new Error('latchkey is shutting down'))
      if (timer) options.clock.clearTimeout(timer.handle)
      timer = undefined
      await agent.destroy()
    },
  }
}
