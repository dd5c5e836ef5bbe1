/**
 * The webhook HTTP client's share of a fan-out, alone: no store, no dispatcher (docs/performance.md, "Webhook
 * fan-out"). Standalone:
 *
 *   npx tsx bench/send-webhooks.ts [--requests 20000] [--concurrency 100]
 *
 * Starts the bench's fastify hello-world in a process of its own (bench/peer-process.ts) and sends it `--requests`
 * POSTs of a 400-byte body through `createHttpSender`, `--concurrency` at a time, as the dispatcher does. Prints the
 * CPU time of this process per request (the server's is not counted). The first 1,000 requests warm up and are not
 * measured.
 */
import { parseArgs } from 'node:util'
import { systemClock } from '../src/app/system-clock.js'
import { createHttpSender } from '../src/webhooks/http-sender.js'
import { createUrlGuard } from '../src/webhooks/ssrf.js'
import { deliveryHeaders } from '../src/webhooks/signing.js'
import { forkTs, installExitHandlers, nextMessage, stopChild } from './lib/children.js'

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '100' } },
})
const requests = Number(values.requests)
const concurrency = Number(values.concurrency)
const WARMUP = 1000

async function main(): Promise<void> {
  installExitHandlers()
  const server = forkTs('bench/peer-process.ts', ['hello'])
  const { port } = await nextMessage<{ type: string; port: number }>(server, 'ready', 30_000)
  const sender = createHttpSender({
    timeoutMs: 15_000,
    clock: systemClock,
    guard: createUrlGuard({ allowedCidrs: ['127.0.0.0/8'] }),
  })
  try {
    const url = `http://127.0.0.1:${port}/hello`
    const body = JSON.stringify({ event_type: 'lock.locked', padding: 'x'.repeat(340) })
    const headers = deliveryHeaders('evt_bench', Math.floor(Date.now() / 1000), `v1,${'s'.repeat(44)}`)
    let next = 0
    let failures = 0
    let cpu = process.cpuUsage()
    let started = performance.now()
    const worker = async () => {
      while (next < requests) {
        if (++next === WARMUP) {
          cpu = process.cpuUsage()
          started = performance.now()
        }
        const outcome = await sender.send({ url, headers, body })
        if (outcome.kind !== 'response' || outcome.response.code !== 200) failures++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const used = process.cpuUsage(cpu)
    const measured = requests - WARMUP
    const seconds = (performance.now() - started) / 1000
    console.log(
      `${measured} requests, ${concurrency} in flight: ${((used.user + used.system) / measured).toFixed(1)} µs CPU ` +
        `each, ${Math.round(measured / seconds)}/s, ${failures} not 200`,
    )
  } finally {
    await sender.close()
    await stopChild(server)
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
