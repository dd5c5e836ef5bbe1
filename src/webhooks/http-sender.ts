import { Agent, type Dispatcher } from 'undici'
import type { Clock } from '../domain/clock.js'
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

/** Reads at most MAX_RESPONSE_BODY_BYTES; stopping early drops the connection, which undici then replaces. */
async function readCapped(body: Dispatcher.ResponseData['body'], into: Buffer[]): Promise<void> {
  let size = 0
  for await (const chunk of body) {
    const piece = chunk as Buffer
    into.push(piece.subarray(0, MAX_RESPONSE_BODY_BYTES - size))
    size += piece.length
    if (size >= MAX_RESPONSE_BODY_BYTES) break
  }
}

export function createHttpSender(options: { timeoutMs: number; clock: Clock; guard: UrlGuard }): HttpSender {
  const agent = new Agent({
    connect: { lookup: options.guard.lookup },
    keepAliveTimeout: 30_000,
    // The dispatcher bounds concurrency per webhook and overall; undici's own backstops use real time.
    headersTimeout: options.timeoutMs + 1000,
    bodyTimeout: options.timeoutMs + 1000,
  })
  const active = new Set<AbortController>()
  const targets = new Map<string, Target | TransportFailure>()

  function target(url: string): Target | TransportFailure {
    let found = targets.get(url)
    if (found === undefined) {
      if (targets.size >= 10_000) targets.clear()
      targets.set(url, (found = parseTarget(url, options.guard)))
    }
    return found
  }

  async function exchange(to: Target, request: OutboundRequest): Promise<SendOutcome> {
    const started = performance.now()
    const abort = new AbortController()
    active.add(abort)
    let timedOut = false
    const timer = options.clock.setTimeout(() => {
      timedOut = true
      abort.abort(new Error(`timed out after ${options.timeoutMs} ms`))
    }, options.timeoutMs)
    let head: { code: number; headers: Record<string, string | string[]> } | undefined
    const chunks: Buffer[] = []
    const answered = (got: NonNullable<typeof head>): SendOutcome => ({
      kind: 'response',
      response: { code: got.code, headers: got.headers, body: Buffer.concat(chunks).toString('utf8') },
      durationMs: performance.now() - started,
    })
    try {
      const response = await agent.request({
        origin: to.origin,
        path: to.path,
        method: 'POST',
        headers: { ...request.headers, ...(to.authorization ? { authorization: to.authorization } : {}) },
        body: request.body,
        signal: abort.signal,
      })
      head = { code: response.statusCode, headers: response.headers as Record<string, string | string[]> }
      await readCapped(response.body, chunks)
      return answered(head)
    } catch (error) {
      // The outcome is the status line: a body still streaming at the deadline is kept as far as it came.
      if (head) return answered(head)
      const failure: TransportFailure = timedOut
        ? { stage: 'timeout', message: messageOf(abort.signal.reason) }
        : transportFailure(abort.signal.aborted ? abort.signal.reason : error)
      return { kind: 'no_response', failure, durationMs: performance.now() - started }
    } finally {
      options.clock.clearTimeout(timer)
      active.delete(abort)
    }
  }

  return {
    async send(request) {
      try {
        const to = target(request.url)
        if (!isTarget(to)) return { kind: 'no_response', failure: to, durationMs: 0 }
        return await exchange(to, request)
      } catch (error) {
        return {
          kind: 'no_response',
          failure: { stage: 'internal', message: `internal error: ${messageOf(error)}` },
          durationMs: 0,
        }
      }
    },

    async close() {
      for (const abort of active) abort.abort(new Error('latchkey is shutting down'))
      await agent.destroy()
    },
  }
}
