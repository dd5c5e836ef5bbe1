import type { Ack, Command } from '../../devices/index.js'
import {
  applyAck,
  createAttempt,
  expire,
  markRepublished,
  markSent,
  type ActionType,
  type AttemptRecord,
  type Transition,
} from '../domain/attempt.js'
import { iso, type Clock } from '../domain/clock.js'
import { LatchkeyError, notFound } from '../domain/errors.js'
import type { AttemptListQuery } from '../domain/queries.js'
import { AttemptTimeouts, SettleWaiters } from './attempt-timeouts.js'
import type { Bus } from './bus.js'
import { sha256 } from './credentials.js'
import type { Metrics } from './metrics.js'
import type { ActionDevice, AttemptStore, DeviceStore } from './store.js'

/** Sends a command to a device; resolves when the broker has acknowledged it (QoS 1 PUBACK). */
export interface CommandSender {
  send(deviceId: string, command: Command): Promise<void>
}

/** The part of the store the attempt service uses. */
export interface AttemptServiceStore {
  attempts: AttemptStore
  devices: Pick<DeviceStore, 'get' | 'forAction'>
}

export interface AttemptServiceDeps {
  store: AttemptServiceStore
  bus: Bus
  clock: Clock
  metrics: Metrics
  commands: CommandSender
  newId: () => string
  actionTimeoutMs: number
  lockResponseWaitMs: number
  onError: (error: unknown, context: string) => void
  /**
   * Several instances on one database: another instance may settle an attempt this one waits for, so a waiting
   * request also reads it back this often (docs/scale-out.md#several-instances). Unset: only this process settles.
   */
  settlePollMs?: number | undefined
  /**
   * Several instances on one database: how often this one settles every pending attempt whose deadline passed,
   * whoever created it (docs/scale-out.md#deadlines). Unset: this process's timers settle its own attempts.
   */
  deadlineSweepMs?: number | undefined
}

export interface LockRequest {
  device_id: string
  sync?: boolean | undefined
  timeout_ms?: number | undefined
}

const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000
/** Attempts one sweep transaction settles at most; a full batch is followed by another at once. */
const SWEEP_BATCH = 100

/** Drives action attempts through their life: create, send, ack, deadline, recovery (docs/api.md, docs/design.md). */
export function createAttemptService(deps: AttemptServiceDeps) {
  const { store, clock } = deps
  const timeouts = new AttemptTimeouts(clock, (id) => void expireAttempt(id))
  const waiters = new SettleWaiters<AttemptRecord>(clock)
  /** Attempts recovered at start-up, re-sent when their device announces itself (the broker kept no session). */
  const redeliver = new Map<string, Set<string>>()
  const now = () => iso(clock.now())

  deps.bus.on('attemptSettled', (attempt) => {
    timeouts.cancel(attempt.action_attempt_id)
    waiters.resolve(attempt.action_attempt_id, attempt)
  })

  function settled(transition: Transition | undefined): void {
    if (transition?.settled) deps.bus.emit('attemptSettled', transition.attempt)
    else if (transition?.changed) deps.bus.emit('attemptChanged', transition.attempt)
  }

  async function expireAttempt(attemptId: string): Promise<void> {
    try {
      const transition = await store.attempts.transition(attemptId, (attempt) => expire(attempt, now()))
      if (transition && !transition.settled && transition.attempt.status === 'pending') {
        // A timer may fire a hair before the deadline by the clock's reckoning: try again then.
        timeouts.arm(attemptId, Date.parse(transition.attempt.deadline_at) + 1)
      }
      settled(transition)
    } catch (error) {
      deps.onError(error, 'expire attempt')
    }
  }

  async function dispatch(attempt: AttemptRecord, republish = false): Promise<void> {
    const command: Command = {
      command_id: attempt.action_attempt_id,
      action: attempt.action_type,
      issued_at: attempt.created_at,
      expires_at: attempt.deadline_at,
    }
    // Naming the device lets the PostgreSQL writer run these beside other devices' writes.
    const scope = { deviceId: attempt.device_id }
    try {
      if (republish) {
        const recorded = await store.attempts.transition(
          attempt.action_attempt_id,
          (current) => markRepublished(current, now()),
          scope,
        )
        if (recorded?.attempt.status !== 'pending') return
      }
      await deps.commands.send(attempt.device_id, command)
      settled(await store.attempts.transition(attempt.action_attempt_id, (current) => markSent(current, now()), scope))
    } catch (error) {
      // The deadline still settles the attempt; nothing else to do here.
      deps.onError(error, 'send command')
    }
  }

  let sweepTimer: ReturnType<Clock['setTimeout']> | undefined
  let closed = false

  /**
   * Settles the attempts whose deadline passed, this instance's and any other's (a dead instance's above all): the
   * local timers are precise for this instance's own, the sweep is the net under every attempt.
   */
  async function sweep(): Promise<number> {
    const expireDue = store.attempts.expireDue?.bind(store.attempts)
    if (!expireDue) return 0
    let total = 0
    for (let batch = SWEEP_BATCH; batch === SWEEP_BATCH && !closed;) {
      const transitions = await expireDue(now(), SWEEP_BATCH, (attempt) => expire(attempt, now()))
      for (const transition of transitions) settled(transition)
      if (transitions.length > 0) deps.metrics.inc('attempt_deadlines_swept_total', {}, transitions.length)
      batch = transitions.length
      total += batch
    }
    return total
  }

  function sweepLater(everyMs: number): void {
    if (closed) return
    sweepTimer = clock.setTimeout(() => {
      sweepTimer = undefined
      sweep()
        .catch((error: unknown) => deps.onError(error, 'sweep deadlines'))
        .finally(() => sweepLater(everyMs))
    }, everyMs)
  }
  if (deps.deadlineSweepMs && store.attempts.expireDue) sweepLater(deps.deadlineSweepMs)

  /** Settled elsewhere (another instance): release this process's waiters and its deadline timer. */
  async function wake(attemptId: string, by: 'notification' | 'poll' = 'notification'): Promise<boolean> {
    if (!waiters.has(attemptId)) return false
    const current = await store.attempts.getById(attemptId)
    if (!current || current.status === 'pending' || !waiters.has(attemptId)) return false
    timeouts.cancel(attemptId)
    waiters.resolve(attemptId, current)
    deps.metrics.inc('attempt_wakes_total', { by })
    return true
  }

  /** Reads the attempt back every `everyMs` until it is settled or the returned stop is called. */
  function pollSettled(attemptId: string, everyMs: number): () => void {
    let stopped = false
    let timer: ReturnType<Clock['setTimeout']> | undefined
    const tick = async () => {
      try {
        if (stopped || (await wake(attemptId, 'poll'))) return
      } catch (error) {
        deps.onError(error, 'poll attempt')
      }
      if (!stopped) timer = clock.setTimeout(() => void tick(), everyMs)
    }
    timer = clock.setTimeout(() => void tick(), everyMs)
    return () => {
      stopped = true
      if (timer !== undefined) clock.clearTimeout(timer)
    }
  }

  /** Answers with the attempt once settled, or as it stands after `waitMs`. */
  async function awaitSettled(attempt: AttemptRecord, waitMs: number): Promise<AttemptRecord> {
    if (attempt.status !== 'pending' || waitMs <= 0) return attempt
    const id = attempt.action_attempt_id
    const stop = deps.settlePollMs ? pollSettled(id, deps.settlePollMs) : undefined
    try {
      const result = await waiters.wait(id, waitMs)
      return result ?? (await store.attempts.getById(id)) ?? attempt
    } finally {
      stop?.()
    }
  }

  function waitFor(attempt: AttemptRecord, sync: boolean | undefined): Promise<AttemptRecord> {
    if (sync === false) return Promise.resolve(attempt)
    if (sync === true) return awaitSettled(attempt, Date.parse(attempt.deadline_at) - clock.now() + 1000)
    return awaitSettled(attempt, deps.lockResponseWaitMs)
  }

  async function actionDevice(workspaceId: string, deviceId: string): Promise<ActionDevice | undefined> {
    if (store.devices.forAction) return store.devices.forAction(workspaceId, deviceId)
    const device = await store.devices.get(workspaceId, deviceId)
    return device && { ...device, online: device.props.online }
  }

  async function replay(
    workspaceId: string,
    key: string,
    requestHash: string,
    sync: boolean | undefined,
  ): Promise<AttemptRecord | undefined> {
    const existing = await store.attempts.findByIdempotencyKey(workspaceId, key)
    if (!existing) return undefined
    if (clock.now() - Date.parse(existing.created_at) > IDEMPOTENCY_WINDOW_MS) {
      await store.attempts.releaseIdempotencyKey(workspaceId, key)
      return undefined
    }
    if (existing.request_hash !== requestHash) {
      throw new LatchkeyError(
        'idempotency_key_reused',
        'This Idempotency-Key was already used with a different request.',
      )
    }
    return waitFor(existing, sync)
  }

  return {
    async request(
      workspaceId: string,
      action: ActionType,
      input: LockRequest,
      idempotencyKey?: string,
    ): Promise<AttemptRecord> {
      // Only a keyed request is ever compared with another: the digest is skipped without a key.
      const keyed =
        idempotencyKey === undefined
          ? undefined
          : {
              key: idempotencyKey,
              hash: sha256(JSON.stringify([action, input.device_id, input.sync ?? null, input.timeout_ms ?? null])),
            }
      const replayIfKeyed = () => keyed && replay(workspaceId, keyed.key, keyed.hash, input.sync)
      const replayed = await replayIfKeyed()
      if (replayed) return replayed
      const device = await actionDevice(workspaceId, input.device_id)
      if (!device) throw notFound('device_not_found', 'Device')
      const able = action === 'LOCK_DOOR' ? device.can_remotely_lock : device.can_remotely_unlock
      if (!able)
        throw new LatchkeyError(
          'action_not_supported',
          `This device cannot ${action === 'LOCK_DOOR' ? 'lock' : 'unlock'} remotely.`,
        )

      const createdMs = clock.now()
      const deadlineMs = createdMs + (input.timeout_ms ?? deps.actionTimeoutMs)
      const { attempt, history, events } = createAttempt(
        {
          action_attempt_id: deps.newId(),
          action_type: action,
          device_id: device.device_id,
          workspace_id: workspaceId,
          now: iso(createdMs),
          deadline_at: iso(deadlineMs),
          idempotency_key: keyed?.key ?? null,
          request_hash: keyed?.hash ?? null,
        },
        device.online,
      )
      try {
        await store.attempts.create(attempt, history, events)
      } catch (error) {
        // Two requests raced with one Idempotency-Key: the loser answers like a replay.
        const raced = await replayIfKeyed()
        if (raced) return raced
        throw error
      }
      if (attempt.status !== 'pending') {
        deps.bus.emit('attemptSettled', attempt)
        return attempt
      }
      deps.bus.emit('attemptChanged', attempt)
      timeouts.arm(attempt.action_attempt_id, deadlineMs)
      const response = waitFor(attempt, input.sync)
      void dispatch(attempt)
      return response
    },

    async get(workspaceId: string, attemptId: string): Promise<AttemptRecord> {
      const attempt = await store.attempts.get(workspaceId, attemptId)
      if (!attempt) throw notFound('action_attempt_not_found', 'Action attempt')
      return attempt
    },

    list: (workspaceId: string, query: AttemptListQuery) => store.attempts.list(workspaceId, query),

    async history(workspaceId: string, attemptId: string) {
      await this.get(workspaceId, attemptId)
      return store.attempts.history(attemptId)
    },

    /** A device's ack; resolves once its effect is committed, so the caller may PUBACK it. */
    async handleAck(deviceId: string, ack: Ack, urgent = true): Promise<void> {
      const transition = await store.attempts.transition(ack.command_id, (attempt) => applyAck(attempt, ack, now()), {
        deviceId,
        urgent,
      })
      if (!transition) {
        deps.metrics.inc('mqtt_messages_dropped_total', { reason: 'unknown_command' })
        return
      }
      const late = transition.history.some((entry) => entry.kind === 'late_ack')
      if (!transition.changed || late)
        deps.metrics.inc('acks_ignored_total', { kind: transition.history[0]?.kind ?? 'none' })
      settled(transition)
    },

    /** Start-up: settle what expired while the process was down, re-arm the rest (docs/operations.md#restarts). */
    async recover(): Promise<{ expired: number; rearmed: number }> {
      let expired = 0
      let rearmed = 0
      for (const attempt of await store.attempts.listPending()) {
        const deadlineMs = Date.parse(attempt.deadline_at)
        if (deadlineMs <= clock.now()) {
          await expireAttempt(attempt.action_attempt_id)
          expired++
          continue
        }
        timeouts.arm(attempt.action_attempt_id, deadlineMs)
        let set = redeliver.get(attempt.device_id)
        if (!set) redeliver.set(attempt.device_id, (set = new Set()))
        set.add(attempt.action_attempt_id)
        rearmed++
      }
      return { expired, rearmed }
    },

    /** A device announced itself online: re-send the commands recovered at start-up, once. */
    async deviceOnline(deviceId: string): Promise<void> {
      const ids = redeliver.get(deviceId)
      if (!ids) return
      redeliver.delete(deviceId)
      for (const id of ids) {
        const attempt = await store.attempts.getById(id)
        // Not awaited: this runs inside the handling of the device's status message, and mqtt.js reads the
        // command's PUBACK only after that handling returns. One settled since is left alone by `markRepublished`.
        if (attempt) void dispatch(attempt, true)
      }
    },

    /** A notification that another instance settled this attempt: answer whoever waits for it here. */
    wake,

    pendingTimers: () => timeouts.size,

    close(): void {
      closed = true
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer)
      sweepTimer = undefined
      timeouts.clear()
      waiters.releaseAll()
    },
  }
}

export type AttemptService = ReturnType<typeof createAttemptService>
