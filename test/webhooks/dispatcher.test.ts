import { describe, expect, it, vi } from 'vitest'
import { createBus } from '../../src/app/bus.js'
import { Metrics } from '../../src/app/metrics.js'
import type { DeliveryStore, RecordedAttempt } from '../../src/app/store.js'
import type { AttemptInput, DeliveryAttempt, DeliveryPlan, DeliveryRef } from '../../src/domain/delivery.js'
import { iso } from '../../src/domain/clock.js'
import type { AttemptDecision, DeliveryContext, DeliveryStatus } from '../../src/domain/webhook-delivery.js'
import { createDispatcher } from '../../src/webhooks/dispatcher.js'
import type { HttpSender } from '../../src/webhooks/http-sender.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** One delivery to one webhook, kept in memory the way the store keeps it, with every recorded attempt. */
class OneDelivery implements DeliveryStore {
  status: DeliveryStatus = 'pending'
  held = false
  next: number | null
  retries = 0
  failures = 0
  enabled = true
  readonly recorded: Array<{ input: AttemptInput; decision: AttemptDecision }> = []

  constructor(
    private readonly clock: FakeClock,
    private readonly secret: string,
  ) {
    this.next = clock.now()
  }

  private ref(): DeliveryRef {
    return {
      seq: 1,
      webhook_id: 'wh_1',
      status: this.status,
      held: this.held,
      next_attempt_at: this.next === null ? null : iso(this.next),
    }
  }

  maxSeq = async () => 1
  listAfter = async () => []
  owedSummary = async () => ({ held: this.held ? 1 : 0, oldestOwedAt: null })
  activeWebhooks = async () => (this.enabled ? ['wh_1'] : [])
  listPending = async (_webhookId: string, after: number) =>
    after < 1 && this.status === 'pending' && !this.held ? [this.ref()] : []

  async loadForAttempt(): Promise<DeliveryPlan> {
    return {
      ...this.ref(),
      event_id: 'evt_1',
      body: '{"event_type":"device.added"}',
      webhook: {
        url: 'http://receiver.invalid/hook',
        secret: this.secret,
        previous_secret: null,
        previous_secret_expires_at: null,
        enabled: this.enabled,
      },
    }
  }

  async recordAttempt(input: AttemptInput, decide: (ctx: DeliveryContext) => AttemptDecision) {
    const decision = decide({
      status: this.status,
      held: this.held,
      nextAttemptAtMs: this.next,
      retriesScheduled: this.retries,
      webhookEnabled: this.enabled,
      webhookDeleted: false,
      consecutiveFailures: this.failures,
      manual: input.manual,
    })
    this.recorded.push({ input, decision })
    this.status = decision.delivery
    this.held = decision.held
    this.next = decision.nextAttemptAtMs
    this.retries = decision.retriesScheduled
    this.failures = decision.consecutiveFailures
    if (decision.disable) this.enabled = false
    const attempt = {
      ...input,
      attempt_id: `dlv_${this.recorded.length}`,
      webhook_id: 'wh_1',
      status: decision.status,
    } as DeliveryAttempt
    return { attempt, decision } satisfies RecordedAttempt
  }

  get = async () => undefined
  attempts = async () => []
}

async function run(sender: HttpSender, secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`) {
  const clock = new FakeClock()
  const store = new OneDelivery(clock, secret)
  const errors: unknown[] = []
  const dispatcher = createDispatcher({
    deliveries: store,
    bus: createBus(),
    clock,
    sender,
    metrics: new Metrics(),
    policy: { scheduleSeconds: [5, 10], disableAfter: 100, random: () => 0.5 },
    limits: { total: 4, perWebhook: 1 },
    onError: (error) => errors.push(error),
    warn: () => {},
  })
  return { clock, store, errors, dispatcher }
}

/** Lets what a timer started run to its end: the fake sender and store answer without I/O. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

const until = (check: () => boolean) =>
  vi.waitFor(() => {
    if (!check()) throw new Error('not yet')
  })

describe('dispatcher: whatever fails while sending is a recorded attempt under the schedule', () => {
  it.each<[string, HttpSender, string | undefined, string]>([
    [
      'a sender that rejects',
      { send: () => Promise.reject(new Error('sender exploded')), close: async () => {} },
      undefined,
      'sender exploded',
    ],
    [
      'a sender that throws',
      {
        send: () => {
          throw new Error('sender threw')
        },
        close: async () => {},
      },
      undefined,
      'sender threw',
    ],
    [
      'signing that throws (a corrupt stored secret)',
      { send: () => Promise.reject(new Error('not reached')), close: async () => {} },
      null as unknown as string,
      'Cannot read properties of null',
    ],
  ])('%s → failed attempts at 0, 5 s and 15 s, then the delivery fails', async (_name, sender, secret, message) => {
    // Scenario: schedule 5 s, 10 s; every attempt throws → three recorded internal failures exactly on the schedule
    // (random 0.5: no jitter), none in between, none after; nothing reported as a storage error.
    const { clock, store, errors, dispatcher } = await run(sender, secret)
    const start = clock.now()
    try {
      await dispatcher.start()
      for (const [n, at] of [
        [1, start],
        [2, start + 5000],
        [3, start + 15_000],
      ] as const) {
        if (n > 1) {
          clock.advance(at - clock.now() - 1)
          await settle()
          expect(store.recorded, `before attempt ${n}`).toHaveLength(n - 1)
          clock.advance(1)
        }
        await until(() => store.recorded.length === n)
        const { input, decision } = store.recorded[n - 1] as (typeof store.recorded)[number]
        expect(input).toMatchObject({ attempted_at: iso(at), response_code: null, manual: false })
        expect(input.error_message).toMatch(/^internal error: /)
        expect(input.error_message).toContain(message)
        expect(decision.outcome.kind).toBe(n < 3 ? 'retry' : 'failed')
      }
      expect(store).toMatchObject({ status: 'failed', next: null, failures: 3 })
      clock.advance(3_600_000)
      await settle()
      expect(store.recorded).toHaveLength(3)
      expect(errors).toEqual([])
    } finally {
      await dispatcher.close()
    }
  })
})

describe('dispatcher: close', () => {
  it('waits for the attempt in flight to end, and leaves it unrecorded so that it goes out again after a restart', async () => {
    // Scenario: the sender holds its answer; close() while the attempt is in flight → close() has not resolved
    // before the answer; once the answer comes, close() resolves, with nothing recorded and nothing reported.
    let answer: (() => void) | undefined
    const sender: HttpSender = {
      send: () =>
        new Promise((resolve) => {
          answer = () => resolve({ kind: 'response', response: { code: 200, headers: {}, body: '' }, durationMs: 1 })
        }),
      close: async () => {},
    }
    const { store, errors, dispatcher } = await run(sender)
    await dispatcher.start()
    await until(() => answer !== undefined)
    expect(dispatcher.stats()).toEqual({ queued: 0, inFlight: 1 })
    let closed = false
    const closing = dispatcher.close().then(() => (closed = true))
    await settle()
    await settle()
    expect(closed).toBe(false)
    answer?.()
    await closing
    expect(dispatcher.stats().inFlight).toBe(0)
    expect(store.recorded).toEqual([])
    expect(errors).toEqual([])
  })
})
