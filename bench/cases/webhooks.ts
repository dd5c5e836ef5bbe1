import { Agent } from 'node:http'
import { cpuMs } from '../lib/children.js'
import { closedLoop, postJson } from '../lib/http.js'
import { hasRoute, type LatchkeyChild } from '../lib/latchkey-child.js'
import { runClosedLoop, type LoopResult } from '../lib/loop.js'
import { firstWarmup, type BenchOptions } from '../lib/options.js'
import { epochNow, Receiver } from '../lib/receiver.js'
import { round, sleep } from '../lib/stats.js'
import { settledSuccess, type Levels } from './end-to-end.js'

/**
 * The webhook cases: (2b) create → webhook received, and (4) signed fan-out. Both run only when latchkey answers
 * `POST /webhooks/create`; otherwise they report `skipped`, and they switch on by themselves once the route lands.
 */

export const WEBHOOKS_MISSING = 'webhooks not available'
export type Skipped = { skipped: string }

export async function webhooksAvailable(lk: LatchkeyChild): Promise<boolean> {
  const agent = new Agent({ keepAlive: false })
  try {
    return await hasRoute(agent, lk, '/webhooks/create')
  } finally {
    agent.destroy()
  }
}

interface WebhookReply {
  webhook: { webhook_id: string; secret: string }
}

async function createWebhook(
  agent: Agent,
  lk: LatchkeyChild,
  receiver: Receiver,
  path: string,
  eventTypes: string[],
): Promise<string> {
  const reply = await postJson<WebhookReply>(
    agent,
    lk.httpUrl,
    '/webhooks/create',
    { url: receiver.url(path), event_types: eventTypes },
    lk.apiKey,
  )
  await receiver.addSecret(reply.webhook.secret)
  return reply.webhook.webhook_id
}

const SETTLED_TYPES = ['lock_door', 'unlock_door'].flatMap((a) => [
  `action_attempt.${a}.succeeded`,
  `action_attempt.${a}.failed`,
])

/** (2b) `sync: false`, then wait for the attempt's settled event at the receiver; latency = create sent → received. */
export async function createToWebhook(
  options: BenchOptions,
  lk: LatchkeyChild,
  deviceIds: readonly string[],
  cpuOf: Record<string, number> = {},
): Promise<Levels> {
  const receiver = await Receiver.start()
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(...options.levels) })
  const levels: Levels = {}
  try {
    const webhookId = await createWebhook(agent, lk, receiver, '/hook/settled', SETTLED_TYPES)
    for (const [index, concurrency] of options.levels.entries()) {
      levels[`c${concurrency}`] = await runClosedLoop({
        concurrency,
        durationMs: options.durationMs,
        warmupMs: firstWarmup(options, index),
        cpuOf,
        op: async (slot, i) => {
          const t0 = epochNow()
          const path = i % 2 === 0 ? '/locks/unlock_door' : '/locks/lock_door'
          const reply = await postJson<{ action_attempt: { action_attempt_id: string } }>(
            agent,
            lk.httpUrl,
            path,
            { device_id: deviceIds[slot], sync: false },
            lk.apiKey,
          )
          // The receiver's arrival time is the true end; the IPC notice that paces the loop lands a little later.
          return (await receiver.arrival(reply.action_attempt.action_attempt_id, 20_000)) - t0
        },
      })
    }
    // Best effort: later cases should not pay for deliveries to this receiver.
    await postJson(agent, lk.httpUrl, '/webhooks/delete', { webhook_id: webhookId }, lk.apiKey).catch(() => undefined)
    return levels
  } finally {
    agent.destroy()
    await receiver.stop()
  }
}

export interface FanoutResult {
  webhooks: number
  /** `release`: deliveries were held (webhooks disabled) while attempts ran, then released at once; `live`: not. */
  mode: 'release' | 'live'
  attempts: LoopResult
  deliveries: number
  deliveries_per_s: number
  bad_signatures: number
  drain_s: number
  /**
   * CPU (user + system) used over the drain, per verified delivery, by process: where a delivery's cost goes
   * (the receiver verifies every signature, on the same cores).
   */
  cpu_ms_per_delivery: { latchkey: number; receiver: number }
}

/**
 * (4) `fanoutWebhooks` webhooks on `*`. The attempts run while the webhooks are disabled, so their deliveries are
 * held (docs/webhooks.md); re-enabling releases them at once; the receiver counts verified deliveries per second: the
 * dispatcher's throughput alone, not shared with the attempts that made the events.
 */
export async function fanout(
  options: BenchOptions,
  lk: LatchkeyChild,
  deviceIds: readonly string[],
): Promise<FanoutResult> {
  const receiver = await Receiver.start()
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  const setEnabled = (ids: string[], enabled: boolean) =>
    Promise.all(
      ids.map((webhook_id) => postJson(agent, lk.httpUrl, '/webhooks/update', { webhook_id, enabled }, lk.apiKey)),
    )
  try {
    const ids: string[] = []
    for (let k = 0; k < options.fanoutWebhooks; k++)
      ids.push(await createWebhook(agent, lk, receiver, `/hook/fanout-${k}`, ['*']))
    const mode = await setEnabled(ids, false).then(
      () => 'release' as const,
      () => 'live' as const,
    )
    await receiver.report(true)
    const attempts = await closedLoop({
      baseUrl: lk.httpUrl,
      concurrency: deviceIds.length,
      durationMs: options.durationMs,
      warmupMs: 0,
      headers: { authorization: `Bearer ${lk.apiKey}` },
      request: (slot, i) => ({
        path: i % 2 === 0 ? '/locks/unlock_door' : '/locks/lock_door',
        body: JSON.stringify({ device_id: deviceIds[slot], sync: true }),
      }),
      ok: settledSuccess,
    })
    const cpuOf = () => {
      const [l, r] = [cpuMs(lk.pid), cpuMs(receiver.pid)]
      return { latchkey: l.user + l.sys, receiver: r.user + r.sys }
    }
    const cpuBefore = cpuOf()
    const released = epochNow()
    if (mode === 'release') await setEnabled(ids, true)
    // Drain: stop once no delivery arrived for a second (bounded).
    let report = await receiver.report()
    for (let quiet = 0, waited = 0; quiet < 2 && waited < 240; waited++) {
      await sleep(500)
      const next = await receiver.report()
      quiet = next.verified === report.verified ? quiet + 1 : 0
      report = next
    }
    const cpuAfter = cpuOf()
    const perDelivery = (ms: number) => round(ms / Math.max(1, report.verified), 3)
    const from = mode === 'release' ? released : report.first
    const spanS = Math.max(0.001, (report.last - from) / 1000)
    return {
      webhooks: options.fanoutWebhooks,
      mode,
      attempts,
      deliveries: report.verified,
      deliveries_per_s: round(report.verified / spanS, 0),
      bad_signatures: report.bad,
      drain_s: round(spanS, 2),
      cpu_ms_per_delivery: {
        latchkey: perDelivery(cpuAfter.latchkey - cpuBefore.latchkey),
        receiver: perDelivery(cpuAfter.receiver - cpuBefore.receiver),
      },
    }
  } finally {
    agent.destroy()
    await receiver.stop()
  }
}
