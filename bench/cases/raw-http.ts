import { randomUUID } from 'node:crypto'
import { Agent } from 'node:http'
import { forkTs, nextMessage, request, stopChild } from '../lib/children.js'
import { closedLoop, post } from '../lib/http.js'
import { runClosedLoop, type LoopResult } from '../lib/loop.js'
import { firstWarmup, type BenchOptions } from '../lib/options.js'
import { newSecret, signedHeaders } from '../lib/signing.js'

/**
 * Raw ceilings 2 and 3, each server in its own process: a fastify hello-world POST at 1/10/100 in flight, and a
 * webhook POST signed as docs/webhooks.md says to a receiver that verifies it with node:crypto HMAC.
 */

export interface RawHttpResult {
  /** Keyed by concurrency: c1, c10, c100. */
  fastify: Record<string, LoopResult>
  webhook: { serial: LoopResult; c100: LoopResult }
}

export async function rawHttp(options: BenchOptions): Promise<RawHttpResult> {
  const fastify: Record<string, LoopResult> = {}
  const hello = forkTs('bench/peer-process.ts', ['hello'])
  try {
    const { port } = await nextMessage<{ type: string; port: number }>(hello, 'ready', 30_000)
    for (const [index, concurrency] of options.levels.entries()) {
      fastify[`c${concurrency}`] = await closedLoop({
        baseUrl: `http://127.0.0.1:${port}`,
        concurrency,
        durationMs: options.durationMs,
        warmupMs: firstWarmup(options, index),
        request: () => ({ path: '/hello', body: '{"device_id":"front-door"}' }),
      })
    }
  } finally {
    await stopChild(hello)
  }
  return { fastify, webhook: await rawWebhook(options) }
}

/** A realistic event body: an attempt-settled event of docs/api.md#events. */
export function sampleEvent(): string {
  const now = new Date().toISOString()
  return JSON.stringify({
    event_id: randomUUID(),
    workspace_id: randomUUID(),
    event_type: 'action_attempt.lock_door.succeeded',
    created_at: now,
    occurred_at: now,
    event_description: 'The lock_door action attempt succeeded.',
    device_id: randomUUID(),
    action_attempt_id: randomUUID(),
    action_type: 'LOCK_DOOR',
    status: 'success',
  })
}

async function rawWebhook(options: BenchOptions): Promise<RawHttpResult['webhook']> {
  const receiver = forkTs('bench/peer-process.ts', ['receiver'])
  try {
    const { port } = await nextMessage<{ type: string; port: number }>(receiver, 'ready', 30_000)
    const secret = newSecret()
    await request(receiver, { type: 'secret', secret }, 'secret-ok')
    const baseUrl = `http://127.0.0.1:${port}`
    const run = async (concurrency: number, warmupMs: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
      try {
        return await runClosedLoop({
          concurrency,
          durationMs: options.durationMs,
          warmupMs,
          // Signing is part of the cost: it happens per delivery attempt, inside the measured time.
          op: async () => {
            const body = sampleEvent()
            const reply = await post(agent, baseUrl, '/hook', body, signedHeaders(secret, randomUUID(), body))
            return reply.status === 200 || `HTTP ${reply.status}`
          },
        })
      } finally {
        agent.destroy()
      }
    }
    const serial = await run(1, firstWarmup(options, 0))
    const c100 = await run(100, options.warmupMs)
    const report = await request<{ type: string; bad: number }>(receiver, { type: 'report' }, 'report')
    if (report.bad > 0) throw new Error(`receiver rejected ${report.bad} signatures`)
    return { serial, c100 }
  } finally {
    await stopChild(receiver)
  }
}
