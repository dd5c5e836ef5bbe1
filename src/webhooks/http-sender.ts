import { Agent, type Dispatcher } from 'undici'
import type { Clock } from '../domain/clock.js'
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

export interface SendOutcome {
  /** Null when no response arrived (network error, timeout, refusal). */
  code: number | null
  headers: Record<string, string | string[]> | null
  /** The first 64 KiB of the response body. */
  body: string | null
  error: string | null
  durationMs: number
}

export interface HttpSender {
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

function parseTarget(raw: string, guard: UrlGuard): Target | string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'invalid URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'refused: only http and https URLs are allowed'
  const why = guard.literalRefusal(url.hostname)
  if (why) return `refused: ${why}`
  const target: Target = { origin: `${url.protocol}//${url.host}`, path: `${url.pathname}${url.search}` }
  if (url.username) {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    target.authorization = `Basic ${Buffer.from(user).toString('base64')}`
  }
  return target
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
  const targets = new Map<string, Target | string>()

  function target(url: string): Target | string {
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
    const timer = options.clock.setTimeout(
      () => abort.abort(new Error(`timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    )
    let code: number | null = null
    let headers: Record<string, string | string[]> | null = null
    const chunks: Buffer[] = []
    try {
      const response = await agent.request({
        origin: to.origin,
        path: to.path,
        method: 'POST',
        headers: { ...request.headers, ...(to.authorization ? { authorization: to.authorization } : {}) },
        body: request.body,
        signal: abort.signal,
      })
      code = response.statusCode
      headers = response.headers as Record<string, string | string[]>
      await readCapped(response.body, chunks)
      return {
        code,
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
        error: null,
        durationMs: performance.now() - started,
      }
    } catch (error) {
      // The outcome is the status line: a body still streaming at the deadline is kept as far as it came.
      if (code !== null)
        return {
          code,
          headers,
          body: Buffer.concat(chunks).toString('utf8'),
          error: null,
          durationMs: performance.now() - started,
        }
      const reason = abort.signal.aborted ? messageOf(abort.signal.reason) : messageOf(error)
      return { code: null, headers: null, body: null, error: reason, durationMs: performance.now() - started }
    } finally {
      options.clock.clearTimeout(timer)
      active.delete(abort)
    }
  }

  return {
    send(request) {
      const to = target(request.url)
      if (typeof to === 'string')
        return Promise.resolve({ code: null, headers: null, body: null, error: to, durationMs: 0 })
      return exchange(to, request)
    },

    async close() {
      for (const abort of active) abort.abort(new Error('latchkey is shutting down'))
      await agent.destroy()
    },
  }
}
