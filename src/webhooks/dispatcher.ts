import type { Bus } from '../app/bus.js'
import { recordDeliveryAttempt, type Metrics } from '../app/metrics.js'
import type { DeliveryClaims, DeliveryStore, RecordedAttempt } from '../app/store.js'
import { iso, type Clock, type TimerHandle } from '../domain/clock.js'
import type { AttemptInput, DeliveryPlan, DeliveryRef } from '../domain/delivery.js'
import { signingSecrets } from '../domain/webhook.js'
import { assertNever } from '../domain/assert.js'
import { batchPerTask } from '../domain/batch.js'
import {
  attemptRecord,
  decideAfterAttempt,
  failureMessage,
  responseResult,
  type AttemptResult,
  type DeliveryStatus,
  type RetryPolicy,
} from '../domain/webhook-delivery.js'
import type { HttpSender, SendOutcome } from './http-sender.js'
import { deliveryHeaders, signatureHeader } from './signing.js'
import { WorkQueue, type Limits, type Task } from './work-queue.js'

export interface DispatcherDeps {
  deliveries: DeliveryStore
  bus: Bus
  clock: Clock
  sender: HttpSender
  metrics: Metrics
  policy: RetryPolicy
  limits: Limits
  onError: (error: unknown, context: string) => void
  warn: (detail: Record<string, unknown>, message: string) => void
  /** Several instances on one database: automatic attempts under leases (docs/scale-out.md#deliveries). */
  claims?: DispatcherClaims | undefined
}

export interface DispatcherClaims {
  store: DeliveryClaims
  /** This instance's name on its leases. */
  owner: string
  /** How long a lease lasts: longer than one attempt can take. */
  leaseMs: number
  /** How often due deliveries that nobody holds are claimed (a lost notification, a dead holder, a retry). */
  pollMs: number
}

export interface Dispatcher {
  /** Loads what is pending (after a crash too) and starts following the outbox. */
  start(): Promise<void>
  close(): Promise<void>
  stats(): { queued: number; inFlight: number }
  /**
   * One manual attempt of a delivery, made now (POST /api/v1/retry), whatever its status: outside the automatic
   * schedule, which it leaves as it was, and recorded with `manual: true`. Resolves once recorded.
   */
  attemptManually(deliverySeq: number): Promise<void>
}

const PAGE = 1000
/**
 * When the store could not load or record an attempt (a storage failure, not a send failure: those are recorded
 * attempts under the schedule), try the delivery again after this long.
 */
const AFTER_STORAGE_ERROR_MS = 5000

function resultOf(outcome: SendOutcome): AttemptResult {
  switch (outcome.kind) {
    case 'response': {
      const retryAfter = outcome.response.headers['retry-after']
      return responseResult(outcome.response.code, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)
    }
    case 'no_response':
      return { kind: 'failure', failure: outcome.failure }
    default:
      return assertNever(outcome)
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error)
}

/**
 * Delivers the outbox (docs/webhooks.md). Fresh deliveries arrive through `eventsCommitted` (read from the outbox tail
 * right after the commit, no polling); retries wait in a heap behind one Clock timer; every attempt is recorded
 * with its consequences in one transaction, and the database, not this memory, is the truth after a restart.
 */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { deliveries, clock } = deps
  const queue = new WorkQueue(deps.limits)
  /** Manual attempts in flight; the queue's are its `inFlight`, and `allDone` is called when that falls to 0. */
  const running = new Set<Promise<void>>()
  let allDone: (() => void) | undefined
  let tailSeq = 0
  let tailing = false
  let tailAgain = false
  let closed = false
  let timer: { handle: TimerHandle; at: number } | undefined
  const claims = deps.claims
  let poll: TimerHandle | undefined

  /**
   * This instance's lease on the delivery, taken or extended: without it another instance makes the attempt. The
   * claims of one pump go in one statement and resolve together, in the order asked, so the attempts go on in the
   * order they were taken.
   */
  const claim =
    claims &&
    batchPerTask(async (seqs: number[]) => {
      const nowMs = clock.now()
      const taken = new Set(await claims.store.claim(seqs, claims.owner, iso(nowMs), iso(nowMs + claims.leaseMs)))
      if (taken.size > 0) deps.metrics.inc('webhook_delivery_claims_total', { result: 'taken' }, taken.size)
      if (taken.size < seqs.length)
        deps.metrics.inc('webhook_delivery_claims_total', { result: 'refused' }, seqs.length - taken.size)
      return seqs.map((seq) => taken.has(seq))
    })

  /**
   * Claims due deliveries nobody holds, as many as would start now (what is ready or running here leaves less room:
   * a lease taken for a delivery that waits here is one another instance could have used), and queues them.
   */
  async function claimDue(): Promise<void> {
    if (!claims || closed) return
    const room = deps.limits.total - (queue.size - queue.scheduled)
    try {
      const nowMs = clock.now()
      const refs = await claims.store.claimDue(claims.owner, iso(nowMs), iso(nowMs + claims.leaseMs), room)
      for (const ref of refs) schedule(ref)
      if (refs.length === 0) return
      deps.metrics.inc('webhook_delivery_claims_total', { result: 'polled' }, refs.length)
      pump()
    } catch (error) {
      deps.onError(error, 'claim webhook deliveries')
    }
  }

  function pollLater(): void {
    if (!claims || closed) return
    poll = clock.setTimeout(() => {
      poll = undefined
      void claimDue().finally(pollLater)
    }, claims.pollMs)
  }

  function schedule(ref: DeliveryRef): void {
    if (ref.status !== 'pending' || ref.held || ref.next_attempt_at === null) return
    queue.add({ seq: ref.seq, webhookId: ref.webhook_id, dueAt: Date.parse(ref.next_attempt_at) }, clock.now())
  }

  function arm(): void {
    const next = queue.nextDueAt()
    if (timer && timer.at === next) return
    if (timer) clock.clearTimeout(timer.handle)
    timer = undefined
    if (next === undefined || closed) return
    const handle = clock.setTimeout(
      () => {
        timer = undefined
        pump()
      },
      Math.max(0, next - clock.now()),
    )
    timer = { handle, at: next }
  }

  function pump(): void {
    if (closed) return
    queue.promote(clock.now())
    for (let task = queue.take(); task; task = queue.take()) {
      void attempt(task)
    }
    arm()
  }

  /** Reads the deliveries committed since the last read. Concurrent calls fold into one more pass. */
  async function tail(): Promise<void> {
    if (tailing) {
      tailAgain = true
      return
    }
    tailing = true
    try {
      do {
        tailAgain = false
        for (;;) {
          const page = await deliveries.listAfter(tailSeq, PAGE)
          for (const ref of page) {
            tailSeq = ref.seq
            schedule(ref)
          }
          pump()
          if (page.length < PAGE || closed) break
        }
      } while (tailAgain && !closed)
    } catch (error) {
      deps.onError(error, 'read webhook outbox')
    } finally {
      tailing = false
    }
  }

  /** Signs and sends one attempt. Never rejects: whatever fails here is a failed attempt, recorded like any other. */
  async function send(plan: DeliveryPlan, manual = false): Promise<{ input: AttemptInput; result: AttemptResult }> {
    const nowMs = clock.now()
    let signature = ''
    let outcome: SendOutcome
    try {
      const timestamp = Math.floor(nowMs / 1000)
      signature = signatureHeader(signingSecrets(plan.webhook, nowMs), plan.event_id, timestamp, plan.body)
      outcome = await deps.sender.send({
        url: plan.webhook.url,
        headers: deliveryHeaders(plan.event_id, timestamp, signature),
        body: plan.body,
      })
    } catch (error) {
      outcome = {
        kind: 'no_response',
        failure: { stage: 'internal', message: `internal error: ${messageOf(error)}` },
        durationMs: 0,
      }
    }
    const result = resultOf(outcome)
    const response = outcome.kind === 'response' ? outcome.response : null
    const input: AttemptInput = {
      delivery_seq: plan.seq,
      attempted_at: iso(nowMs),
      duration_ms: outcome.durationMs,
      response_code: response?.code ?? null,
      response_headers: response?.headers ?? null,
      response_body: response?.body ?? null,
      error_message: result.kind === 'failure' ? failureMessage(result.failure) : null,
      signature,
      manual,
    }
    return { input, result }
  }

  function observe(recorded: RecordedAttempt, before: DeliveryStatus): void {
    const { attempt, decision } = recorded
    deps.bus.emit('deliveryAttempted', attempt)
    recordDeliveryAttempt(deps.metrics, recorded, before)
    const reason = decision.disable
    if (!reason) return
    queue.dropWebhook(attempt.webhook_id)
    deps.metrics.inc('webhooks_disabled_total', { reason })
    deps.warn(
      { webhook_id: attempt.webhook_id, reason, attempt_id: attempt.attempt_id },
      'webhook disabled; its deliveries are held',
    )
  }

  /** Records an attempt with what the domain decides about it, in one store transaction. */
  function record(input: AttemptInput, result: AttemptResult): Promise<RecordedAttempt | undefined> {
    return deliveries.recordAttempt(input, (ctx) =>
      attemptRecord(decideAfterAttempt(result, ctx, deps.policy, clock.now()), ctx),
    )
  }

  /**
   * One HTTP attempt of one delivery, then the delivery queued again if it is due again. One async function from
   * claim to record: a fan-out runs thousands a second, and every extra frame is a promise more per attempt.
   */
  async function attempt(task: Task): Promise<void> {
    let dueAt: number | undefined
    try {
      // Another instance holds it, or it is no longer due: that instance, or the due time's owner, makes the attempt.
      if (claim && !(await claim(task.seq))) return
      const plan = await deliveries.loadForAttempt(task.seq)
      // Delivered, cancelled or held since it was queued: the database decides.
      if (!plan || plan.status !== 'pending' || plan.held || closed) return
      const { input, result } = await send(plan)
      // Shutting down: not recorded, so the delivery is still due and goes out again after the restart.
      if (closed) return
      const recorded = await record(input, result)
      if (!recorded) return
      observe(recorded, plan.status)
      const { outcome } = recorded.decision
      if (outcome.kind !== 'retry') return
      dueAt = outcome.at
      // Waiting for its retry, the delivery is anybody's again: whichever instance claims it when due.
      // Not given back (the database failed): the lease lapses by itself, and the retry is recorded all the same.
      if (claims)
        await claims.store
          .release(task.seq, claims.owner)
          .catch((error: unknown) => deps.onError(error, 'release webhook delivery lease'))
    } catch (error) {
      deps.onError(error, 'webhook delivery')
      dueAt = clock.now() + AFTER_STORAGE_ERROR_MS
    } finally {
      queue.done(task)
      if (dueAt !== undefined && !closed) queue.add({ ...task, dueAt }, clock.now())
      if (queue.inFlight === 0) allDone?.()
      pump()
    }
  }

  /** Not through the queue: the caller asked for this one attempt now, and the schedule decides nothing about it. */
  async function attemptManually(seq: number): Promise<void> {
    try {
      const plan = await deliveries.loadForAttempt(seq)
      if (!plan || closed) return
      const { input, result } = await send(plan, true)
      if (closed) return
      const recorded = await record(input, result)
      if (recorded) observe(recorded, plan.status)
    } catch (error) {
      deps.onError(error, 'manual webhook delivery')
    }
  }

  /** Queues every pending delivery of a webhook, oldest event first. */
  async function load(webhookId: string): Promise<void> {
    for (let after = 0; !closed;) {
      const page = await deliveries.listPending(webhookId, after, PAGE)
      for (const ref of page) schedule(ref)
      pump()
      const last = page[page.length - 1]
      if (!last || page.length < PAGE) return
      after = last.seq
    }
  }

  async function release(webhookId: string): Promise<void> {
    try {
      await load(webhookId)
    } catch (error) {
      deps.onError(error, 'release held deliveries')
    }
  }

  // Most events go to no webhook: then there is nothing new in the outbox to read.
  const onEvents = (events: unknown[], deliveriesQueued?: number) => {
    if (events.length > 0 && deliveriesQueued !== 0 && !closed) void tail()
  }
  const onReleased = (webhookId: string) => void release(webhookId)
  const onHeld = (webhookId: string) => queue.dropWebhook(webhookId)

  return {
    async start() {
      // Tail position first, then the pending rows: a row committed in between is found by one or the other.
      tailSeq = await deliveries.maxSeq()
      deps.bus.on('eventsCommitted', onEvents)
      deps.bus.on('deliveriesReleased', onReleased)
      deps.bus.on('deliveriesHeld', onHeld)
      for (const webhookId of await deliveries.activeWebhooks()) await load(webhookId)
      await tail()
      pump()
      // Another instance committed deliveries: read the outbox now rather than at the next poll.
      claims?.store.onQueued(() => {
        if (!closed) void tail()
      })
      pollLater()
    },

    async close() {
      closed = true
      deps.bus.off('eventsCommitted', onEvents)
      deps.bus.off('deliveriesReleased', onReleased)
      deps.bus.off('deliveriesHeld', onHeld)
      if (timer) clock.clearTimeout(timer.handle)
      timer = undefined
      if (poll !== undefined) clock.clearTimeout(poll)
      poll = undefined
      await deps.sender.close()
      const attempts = queue.inFlight > 0 ? new Promise<void>((resolve) => (allDone = resolve)) : undefined
      await Promise.allSettled([...running, attempts])
    },

    stats: () => ({ queued: queue.size - queue.inFlight, inFlight: queue.inFlight }),

    attemptManually(deliverySeq) {
      const work = attemptManually(deliverySeq)
      running.add(work)
      void work.finally(() => running.delete(work))
      return work
    },
  }
}
