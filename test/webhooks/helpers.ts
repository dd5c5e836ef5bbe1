import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SeamHttp } from '@seamapi/http/connect'
import { Webhook as StandardWebhook } from 'standardwebhooks'
import { SeamWebhook } from '@seamapi/webhook'
import { vi } from 'vitest'
import type { VirtualLock, VirtualLockOptions } from '../../simulator/index.js'
import type { DeliveryAttempt } from '../../src/domain/delivery.js'
import type { Clock } from '../../src/domain/clock.js'
import { onlineLock } from '../helpers/devices.js'
import { ADMIN_KEY, it as base, startTestLatchkey, type TestLatchkey } from '../helpers/latchkey.js'

/** One request a receiver got. */
export interface Received {
  id: string
  headers: IncomingHttpHeaders
  body: string
  /** Parsed body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  event: any
}

/** An HTTP answer; `hang` never answers, `reset` drops the connection without one (a network failure). */
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang' | 'reset'
export type Responder = (request: Received, index: number) => Reply

/** A webhook receiver on 127.0.0.1:0 whose answers the test scripts; it records every request. */
export class Receiver {
  readonly received: Received[] = []
  private readonly hanging = new Set<ServerResponse>()

  private constructor(
    private readonly server: Server,
    public respond: Responder,
  ) {}

  static async start(respond: Responder = () => ({ status: 204 }), port = 0): Promise<Receiver> {
    const server = createServer()
    const receiver = new Receiver(server, respond)
    server.on('request', (req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => receiver.handle(req.headers, Buffer.concat(chunks).toString('utf8'), res))
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    return receiver
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`
  }

  /** Requests whose webhook-id is `id`, in arrival order. */
  of(id: string): Received[] {
    return this.received.filter((r) => r.id === id)
  }

  /** Resolves once `check` holds for what has been received. */
  async until(check: (received: Received[]) => boolean, timeout = 10_000): Promise<void> {
    await vi.waitFor(
      () => {
        if (!check(this.received)) throw new Error(`receiver: condition not met after ${this.received.length} requests`)
      },
      { timeout, interval: 2 },
    )
  }

  count(n: number, timeout?: number): Promise<void> {
    return this.until((r) => r.length >= n, timeout)
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(headers: IncomingHttpHeaders, body: string, res: ServerResponse): void {
    let event: unknown = undefined
    try {
      event = JSON.parse(body)
    } catch {
      // kept as text
    }
    const request: Received = { id: String(headers['webhook-id']), headers, body, event }
    this.received.push(request)
    const reply = this.respond(request, this.received.length - 1)
    if (reply === 'hang') this.hanging.add(res)
    else if (reply === 'reset') res.socket?.destroy()
    else res.writeHead(reply.status, reply.headers).end(reply.body ?? '')
  }
}

function pick(headers: IncomingHttpHeaders, prefix: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['id', 'timestamp', 'signature']) out[`${prefix}-${name}`] = String(headers[`${prefix}-${name}`])
  return out
}

/** Runs `fn` with Date reading `nowMs`: the verifiers check the timestamp against the clock latchkey ran on. */
function at<T>(nowMs: number | undefined, fn: () => T): T {
  if (nowMs === undefined) return fn()
  vi.useFakeTimers({ toFake: ['Date'], now: nowMs })
  try {
    return fn()
  } finally {
    vi.useRealTimers()
  }
}

/**
 * Verifies a delivery the way receivers do: `standardwebhooks` with only the webhook-* headers, and Seam's own
 * `@seamapi/webhook` with only the svix-* headers. Throws if either refuses. Returns the verified payload.
 */
export function verifyBoth(secret: string, request: Received, nowMs?: number): unknown {
  return at(nowMs, () => {
    const standard = new StandardWebhook(secret).verify(request.body, pick(request.headers, 'webhook'))
    new SeamWebhook(secret).verify(request.body, pick(request.headers, 'svix'))
    return standard
  })
}

/** True when neither verifier accepts the request with `secret`. */
export function refusedByBoth(secret: string, request: Received, nowMs?: number): boolean {
  return at(nowMs, () => {
    const refused = (fn: () => unknown) => {
      try {
        fn()
        return false
      } catch {
        return true
      }
    }
    return (
      refused(() => new StandardWebhook(secret).verify(request.body, pick(request.headers, 'webhook'))) &&
      refused(() => new SeamWebhook(secret).verify(request.body, pick(request.headers, 'svix')))
    )
  })
}

export interface Workspace {
  apiKey: string
  workspaceId: string
}

/** Everything a test starts, closed in reverse order at teardown by the shared `defer` fixture. */
export class Rig {
  constructor(readonly defer: (close: () => unknown) => void) {}

  async latchkey(
    options: { env?: Record<string, string>; clock?: Clock; dataDir?: string; keep?: boolean } = {},
  ): Promise<TestLatchkey> {
    const t = await startTestLatchkey({ ...options, env: { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', ...options.env } })
    this.defer(() => t.close())
    return t
  }

  async receiver(respond?: Responder, port?: number): Promise<Receiver> {
    const receiver = await Receiver.start(respond, port)
    this.defer(() => receiver.close())
    return receiver
  }

  async lock(
    t: TestLatchkey,
    options: Partial<VirtualLockOptions> = {},
    key?: string,
  ): Promise<{ lock: VirtualLock; deviceId: string }> {
    const made = await onlineLock(t, options, key)
    this.defer(() => made.lock.stop())
    return { lock: made.lock, deviceId: made.device.deviceId }
  }

  /** A second workspace on the same latchkey (created with the admin key). */
  async workspace(t: TestLatchkey, name = 'other'): Promise<Workspace> {
    const res = await t.call('/workspaces/create', { name }, ADMIN_KEY)
    return { apiKey: res.body.api_key.token, workspaceId: res.body.workspace.workspace_id }
  }

  seam(t: TestLatchkey, apiKey = t.apiKey): SeamHttp {
    return new SeamHttp({ apiKey, endpoint: t.lk.httpUrl })
  }
}

/**
 * The shared fixtures of test/helpers/latchkey.ts plus `rig`, whose `latchkey()` allows loopback webhooks and
 * whose servers, locks and instances are closed after the test.
 */
export const it = base.extend<{ rig: Rig }>({
  rig: async ({ defer }, use) => use(new Rig(defer)),
})

/** Creates a webhook and returns it (with its secret). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function createWebhook(t: TestLatchkey, url: string, eventTypes?: string[], key?: string): Promise<any> {
  const res = await t.call('/webhooks/create', { url, ...(eventTypes ? { event_types: eventTypes } : {}) }, key)
  if (res.status !== 200) throw new Error(`webhooks/create: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.webhook
}

/** The recorded attempts of one delivery (event × webhook). */
export function attemptsOf(t: TestLatchkey, eventId: string, webhookId: string): Promise<DeliveryAttempt[]> {
  return t.lk.store.deliveries.attempts(eventId, webhookId)
}

/** Waits until the delivery of `eventId` to `webhookId` has `n` recorded attempts. */
export async function waitForAttempts(
  t: TestLatchkey,
  eventId: string,
  webhookId: string,
  n: number,
): Promise<DeliveryAttempt[]> {
  let attempts: DeliveryAttempt[] = []
  await vi.waitFor(
    async () => {
      attempts = await attemptsOf(t, eventId, webhookId)
      if (attempts.length < n) throw new Error(`${attempts.length} of ${n} attempts recorded`)
    },
    { timeout: 10_000, interval: 5 },
  )
  return attempts
}
