import { Agent, request } from 'node:http'
import { runClosedLoop, type LoopResult, type LoopSpec } from './loop.js'

/**
 * The HTTP side of the bench: one JSON POST helper and a closed-loop load generator on `node:http` with a
 * keep-alive Agent (maxSockets = concurrency). Loopback only: every target is a URL this process was handed by a
 * child it started on 127.0.0.1.
 */

export interface HttpReply {
  status: number
  text: string
}

const REQUEST_TIMEOUT_MS = 30_000

export function post(
  agent: Agent,
  baseUrl: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  const url = new URL(path, baseUrl)
  assertLoopback(url)
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      },
    )
    req.setTimeout(REQUEST_TIMEOUT_MS, () =>
      req.destroy(new Error(`POST ${url.pathname}: no answer within ${REQUEST_TIMEOUT_MS} ms`)),
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** POSTs JSON and parses the answer; throws on a non-2xx with the body in the message. */
export async function postJson<T = Record<string, unknown>>(
  agent: Agent,
  baseUrl: string,
  path: string,
  body: unknown,
  key?: string,
): Promise<T> {
  const reply = await post(
    agent,
    baseUrl,
    path,
    JSON.stringify(body ?? {}),
    key ? { authorization: `Bearer ${key}` } : {},
  )
  if (reply.status < 200 || reply.status > 299)
    throw new Error(`POST ${path}: HTTP ${reply.status}: ${reply.text.slice(0, 300)}`)
  return JSON.parse(reply.text) as T
}

export function assertLoopback(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(`refusing non-loopback target ${url.href}: the bench never leaves 127.0.0.0/8`)
  }
}

export interface LoadSpec {
  baseUrl: string
  concurrency: number
  durationMs: number
  warmupMs: number
  /** Path and body of request number `i` of worker `slot`, and its server when not `baseUrl`. */
  request: (slot: number, i: number) => { path: string; body: string; baseUrl?: string }
  headers?: Record<string, string>
  /** Whether a 2xx answer counts as a success (e.g. the attempt settled as success). Default: any 2xx. */
  ok?: (text: string) => boolean
  /** Processes whose CPU use is reported, by label (see LoopSpec.cpuOf). */
  cpuOf?: LoopSpec['cpuOf']
  /** latchkey's garbage-collection totals (see LoopSpec.gcOf). */
  gcOf?: LoopSpec['gcOf']
}

/** The closed-loop HTTP load generator: keep-alive sockets, one per worker. */
export async function closedLoop(spec: LoadSpec): Promise<LoopResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency })
  try {
    return await runClosedLoop({
      concurrency: spec.concurrency,
      durationMs: spec.durationMs,
      warmupMs: spec.warmupMs,
      ...(spec.cpuOf ? { cpuOf: spec.cpuOf } : {}),
      ...(spec.gcOf ? { gcOf: spec.gcOf } : {}),
      op: async (slot, i) => {
        const { path, body, baseUrl } = spec.request(slot, i)
        const reply = await post(agent, baseUrl ?? spec.baseUrl, path, body, spec.headers)
        const good = reply.status >= 200 && reply.status < 300 && (spec.ok?.(reply.text) ?? true)
        return good || `HTTP ${reply.status}: ${reply.text.slice(0, 200)}`
      },
    })
  } finally {
    agent.destroy()
  }
}
