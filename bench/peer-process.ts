import Fastify from 'fastify'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { verify } from './lib/signing.js'

/**
 * Helper servers the bench talks to from another process (run through tsx, driven over IPC):
 *   hello     a fastify hello-world POST route, the HTTP raw ceiling
 *   receiver  a webhook receiver that verifies every signature (node:crypto HMAC) and counts
 */

type Message = { type: 'secret'; secret: string } | { type: 'report'; reset?: boolean } | { type: 'await'; id: string }

const send = (message: Record<string, unknown>) => process.send?.(message)
const role = process.argv[2]

async function hello(): Promise<number> {
  const app = Fastify({ logger: false })
  app.post('/hello', async () => ({ hello: 'world', ok: true }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as AddressInfo).port
}

async function receiver(): Promise<number> {
  const secrets: string[] = []
  let received = 0
  let verified = 0
  let bad = 0
  let first = 0
  let last = 0
  /** Arrival time (epoch ms, sub-ms resolution) of each settled-attempt event, by action_attempt_id. */
  let arrivals: Record<string, number> = {}
  /** Attempt ids the bench waits for: answered with 'arrived' as soon as their event is in. */
  const awaited = new Set<string>()
  const arrived = (id: string, at: number) => send({ type: 'arrived', id, at })

  process.on('message', (raw) => {
    const message = raw as Message
    if (message.type === 'secret') {
      secrets.push(message.secret)
      send({ type: 'secret-ok' })
    } else if (message.type === 'await') {
      const at = arrivals[message.id]
      if (at === undefined) awaited.add(message.id)
      else arrived(message.id, at)
    } else if (message.type === 'report') {
      send({ type: 'report', received, verified, bad, first, last, arrivals: Object.keys(arrivals).length })
      if (message.reset) {
        received = verified = bad = first = last = 0
        arrivals = {}
      }
    }
  })

  const server = createServer({ keepAlive: true }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const at = performance.timeOrigin + performance.now()
      const body = Buffer.concat(chunks)
      received++
      if (!verify(secrets, req.headers, body)) {
        bad++
        res.writeHead(401).end()
        return
      }
      verified++
      first ||= at
      last = at
      const event = safeJson(body)
      if (
        event &&
        typeof event.action_attempt_id === 'string' &&
        /\.(succeeded|failed)$/.test(String(event.event_type))
      ) {
        const id = event.action_attempt_id
        arrivals[id] ??= at
        if (awaited.delete(id)) arrived(id, at)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

function safeJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    return JSON.parse(body.toString('utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

const start = role === 'hello' ? hello : role === 'receiver' ? receiver : undefined
if (!start) {
  console.error(`usage: peer-process.ts hello|receiver (got ${role})`)
  process.exit(2)
}
start().then(
  (port) => send({ type: 'ready', port }),
  (error: unknown) => {
    send({ type: 'error', message: String(error) })
    process.exit(1)
  },
)
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
