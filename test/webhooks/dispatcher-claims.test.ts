import { describe, expect, it, vi } from 'vitest'
import { createBus } from '../../src/app/bus.js'
import { Metrics } from '../../src/app/metrics.js'
import type { DeliveryClaims, DeliveryStore, RecordedAttempt } from '../../src/app/store.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRef } from '../../src/domain/delivery.js'
import { iso } from '../../src/domain/clock.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../../src/domain/webhook-delivery.js'
import { createDispatcher, type Dispatcher } from '../../src/webhooks/dispatcher.js'
import type { HttpSender, SendOutcome } from '../../src/webhooks/http-sender.js'
import { FakeClock } from '../helpers/fake-clock.js'

/**
 * Two dispatchers (two instances) on one delivery and its lease, kept in memory with the rules the PostgreSQL claims
 * apply (docs/scale-out.md#deliveries): an automatic attempt is made only by the lease's holder.
 */
class SharedDelivery implements DeliveryStore, DeliveryClaims {
  status: DeliveryStatus = 'pending'
  next: number | null
  retries = 0
  failures = 0
  lease: { owner: string; until: number } | undefined
  readonly recorded: Array<{ input: AttemptInput; decision: AttemptDecision }> = []

  constructor(private readonly clock: FakeClock) {
    this.next = clock.now()
  }

  private ref(): DeliveryRef {
    return {
      seq: 1,
      webhook_id: 'wh_1',
      status: this.status,
      held: false,
      next_attempt_at: this.next === null ? null : iso(this.next),
    }
  }

  private claimable(owner: string, nowMs: number, own: boolean): boolean {
    const owed = this.status === 'pending' && this.next !== null && this.next <= nowMs
    const free = !this.lease || this.lease.until < nowMs || (own && this.lease.owner === owner)
    return owed && free
  }

  async claim(seqs: number[], owner: string, now: string, until: string): Promise<number[]> {
    if (!seqs.includes(1) || !this.claimable(owner, Date.parse(now), true)) return []
    this.lease = { owner, until: Date.parse(until) }
    return [1]
  }

  async claimDue(owner: string, now: string, until: string, limit: number): Promise<DeliveryRef[]> {
    if (limit <= 0 || !this.claimable(owner, Date.parse(now), false)) return []
    this.lease = { owner, until: Date.parse(until) }
    return [this.ref()]
  }

  async release(_seq: number, owner: string): Promise<void> {
    if (this.lease?.owner === owner) this.lease = undefined
  }

  onQueued(): void {}

  maxSeq = async () => 1
  listAfter = async () => []
  owedSummary = async () => ({ held: 0, oldestOwedAt: null })
  activeWebhooks = async () => ['wh_1']
  listPending = async (_webhookId: string, after: number) =>
    after < 1 && this.status === 'pending' ? [this.ref()] : []

  async loadForAttempt(): Promise<DeliveryPlan> {
    return {
      ...this.ref(),
      event_id: 'evt_1',
      body: '{"event_type":"device.added"}',
      webhook: {
        url: 'http://receiver.invalid/hook',
        secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
        previous_secret: null,
        previous_secret_expires_at: null,
        enabled: true,
      },
    }
  }

  async recordAttempt(input: AttemptInput, decide: (ctx: DeliveryContext) => AttemptDecision) {
    const decision = decide({
      status: this.status,
      held: false,
      nextAttemptAtMs: this.next,
      retriesScheduled: this.retries,
      webhookEnabled: true,
      webhookDeleted: false,
      consecutiveFailures: this.failures,
      manual: input.manual,
    })
    this.recorded.push({ input, decision })
    this.status = decision.delivery
    this.next = decision.nextAttemptAtMs
    this.retries = decision.retriesScheduled
    this.failures = decision.consecutiveFailures
    const attempt = { ...input, attempt_id: `dlv_${this.recorded.length}`, webhook_id: 'wh_1', status: decision.status }
    return { attempt: attempt as DeliveryAttempt, decision } satisfies RecordedAttempt
  }

  get = async () => undefined
  attempts = async () => []
}

/** A sender that answers each request as scripted; `hang` leaves it unanswered until the sender closes. */
function scriptedSender(replies: Array<number | 'hang'>): HttpSender & { sent: number } {
  const hanging: Array<(outcome: SendOutcome) => void> = []
  const sender = {
    sent: 0,
    send(): Promise<SendOutcome> {
      const reply = replies[sender.sent++] ?? 204
      if (reply === 'hang') return new Promise((resolve) => hanging.push(resolve))
      return Promise.resolve({ kind: 'response', response: { code: reply, headers: {}, body: '' }, durationMs: 1 })
    },
    async close() {
      for (const resolve of hanging)
        resolve({ kind: 'no_response', failure: { stage: 'network', message: 'closed' }, durationMs: 1 })
    },
  }
  return sender
}

const LEASE_MS = 3000
const POLL_MS = 1000

function instance(owner: string, store: SharedDelivery, clock: FakeClock, sender: HttpSender): Dispatcher {
  return createDispatcher({
    deliveries: store,
    bus: createBus(),
    clock,
    sender,
    metrics: new Metrics(),
    policy: { scheduleSeconds: [5, 10], disableAfter: 100, random: () => 0.5 },
    limits: { total: 4, perWebhook: 1 },
    onError: (error) => {
      throw error
    },
    warn: () => {},
    claims: { store, owner, leaseMs: LEASE_MS, pollMs: POLL_MS },
  })
}

const until = (check: () => boolean) =>
  vi.waitFor(() => {
    if (!check()) throw new Error('not yet')
  })

describe('dispatcher with delivery leases', () => {
  it('two instances that both load one delivery attempt it once, and its retry once', async () => {
    // Scenario: A and B start on one pending delivery; the first attempt answers 500, the retry 204 → two recorded
    // attempts in all (not four), each made under a lease; the lease is given back while the retry waits.
    const clock = new FakeClock()
    const store = new SharedDelivery(clock)
    const senders = [scriptedSender([500]), scriptedSender([500])]
    const [a, b] = [instance('a', store, clock, senders[0]!), instance('b', store, clock, senders[1]!)] as const
    await Promise.all([a.start(), b.start()])
    await until(() => store.recorded.length === 1)
    expect(store.lease).toBeUndefined()
    expect(store.status).toBe('pending')
    // The retry is due in 5 s: both instances wake for it (their heap, their poll); one makes it.
    for (let i = 0; i < 7 && store.status === 'pending'; i++) {
      clock.advance(1000)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await until(() => store.status === 'delivered')
    expect(store.recorded.map((r) => r.decision.status)).toEqual(['failed', 'success'])
    expect(senders[0]!.sent + senders[1]!.sent).toBe(2)
    await Promise.all([a.close(), b.close()])
  })

  it("a holder that dies mid-attempt keeps the delivery until its lease lapses; then the other's poll takes it", async () => {
    // Scenario: A claims the delivery, its request hangs, and A stops (as killed: nothing recorded, the lease left
    // in place). B's start and polls find it leased and leave it; once the 3 s lease has lapsed, B's next poll
    // claims it and delivers.
    const clock = new FakeClock()
    const store = new SharedDelivery(clock)
    const senderA = scriptedSender(['hang'])
    const senderB = scriptedSender([])
    const a = instance('a', store, clock, senderA)
    await a.start()
    await until(() => senderA.sent === 1)
    expect(store.lease).toEqual({ owner: 'a', until: clock.now() + LEASE_MS })
    await a.close()
    expect(store.recorded).toHaveLength(0)
    const leaseEnds = store.lease?.until ?? 0
    const b = instance('b', store, clock, senderB)
    await b.start()
    for (let i = 0; i < 6 && senderB.sent === 0; i++) {
      clock.advance(POLL_MS)
      await new Promise<void>((resolve) => setImmediate(resolve))
      if (clock.now() <= leaseEnds) expect(senderB.sent).toBe(0)
    }
    await until(() => store.status === 'delivered')
    expect(clock.now()).toBeGreaterThan(leaseEnds)
    expect(clock.now()).toBeLessThanOrEqual(leaseEnds + POLL_MS)
    expect(store.recorded).toHaveLength(1)
    expect(senderB.sent).toBe(1)
    await b.close()
  })
})
