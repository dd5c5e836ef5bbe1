import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'eventemitter3'
import {
  CommandSchema,
  parseJsonPayload,
  type Ack,
  type Command,
  type DeviceEvent,
  type DeviceEventType,
  type DeviceState,
} from '../devices/index.js'
import {
  errorMessage,
  mergeBehaviour,
  nextManualEventDelayMs,
  planCommand,
  type Behaviour,
  type BehaviourInput,
  type Outcome,
  type RandomSource,
  type SimulatedErrorType,
} from './behaviour.js'
import { cloneCounters, countAck, emptyCounters, type LockCounters } from './counters.js'
import { LockConnection, type LockConnectionOptions } from './lock-connection.js'

export type EventMethod = NonNullable<DeviceEvent['method']>
export type LockState = Required<DeviceState>

export interface VirtualLockOptions extends LockConnectionOptions {
  behaviour?: BehaviourInput
  random?: RandomSource
  /** The lock's own clock, used for every expiry decision. */
  now?: () => number
  /**
   * Where the lock's waits (ack latency, late acks, manual events) are timed; the global timers by default. A test
   * passes a fake clock here, together with `now`, to move the lock's time by hand.
   */
  timers?: LockTimers
  initialState?: Partial<DeviceState>
  /** How many recent command ids are remembered for idempotency. Default 1000. */
  recentCommandLimit?: number
}

export interface LockTimers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const GLOBAL_TIMERS: LockTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface VirtualLockEvents {
  connected: []
  disconnected: []
  command: [command: Command]
  duplicate: [command: Command]
  invalid: [payload: Buffer]
  silenced: [command: Command]
  acked: [ack: Ack]
  state: [state: LockState]
  event: [event: DeviceEvent]
  error: [error: Error]
}

interface RecentCommand {
  finalAck?: Ack
}

type Settling = Exclude<Outcome, { kind: 'silent' }>

/** Below this a bolt cannot move: commands are refused with low_battery whatever the knobs say. */
export const REFUSE_BELOW_BATTERY = 0.05

/** One simulated lock obeying the device contract of docs/mqtt.md, with the behaviour knobs of behaviour.ts. */
export class VirtualLock extends EventEmitter<VirtualLockEvents> {
  readonly deviceId: string
  readonly behaviour: Behaviour
  private readonly options: VirtualLockOptions
  private readonly random: RandomSource
  private readonly now: () => number
  private readonly current: LockState
  private readonly counts = emptyCounters()
  private readonly recent = new Map<string, RecentCommand>()
  private readonly clock: LockTimers
  /** Cancels every pending wait and interval. */
  private readonly timers = new Set<() => void>()
  private readonly connection: LockConnection

  constructor(options: VirtualLockOptions) {
    super()
    this.options = options
    this.deviceId = options.deviceId
    this.behaviour = mergeBehaviour(options.behaviour)
    this.random = options.random ?? Math.random
    this.now = options.now ?? Date.now
    this.clock = options.timers ?? GLOBAL_TIMERS
    this.current = {
      locked: true,
      door_open: false,
      jammed: false,
      battery_level: 1,
      firmware_version: 'latchkey-sim/0.1.0',
      ...options.initialState,
    }
    this.connection = new LockConnection(options, {
      announce: () => this.publishState(),
      connected: () => this.onConnected(),
      disconnected: () => this.onDisconnected(),
      command: (payload) => this.onCommand(payload),
      error: (err) => this.emit('error', err),
    })
  }

  get connected(): boolean {
    return this.connection.connected
  }

  get state(): LockState {
    return { ...this.current }
  }

  get counters(): LockCounters {
    return cloneCounters(this.counts)
  }

  /** Resolves once connected, subscribed to its commands and announced (retained `online` + `state`). */
  async start(): Promise<void> {
    await this.connection.start()
    this.startKnobTimers()
  }

  /** Clean shutdown: retained `offline`, then DISCONNECT. Pending commands are abandoned. */
  async stop(): Promise<void> {
    this.clearTimers()
    await this.connection.stop()
  }

  /** Power cut: no DISCONNECT, so the broker publishes the `offline` will. start() again to power it back on. */
  kill(): void {
    this.clearTimers()
    this.connection.kill()
  }

  /** Network blip: the socket drops abruptly and comes back after downMs with the same MQTT session. */
  flap(downMs: number): void {
    this.connection.flap(downMs)
  }

  manualLock(method: EventMethod = 'manual'): Promise<void> {
    return this.moveManually(true, method)
  }

  manualUnlock(method: EventMethod = 'manual'): Promise<void> {
    return this.moveManually(false, method)
  }

  async reportAccessDenied(method: EventMethod = 'keycode'): Promise<void> {
    await this.publishEvent('lock.access_denied', method)
  }

  async reportTamper(): Promise<void> {
    await this.publishEvent('device.tampered')
  }

  setBattery(level: number): Promise<void> {
    if (!(level >= 0 && level <= 1)) throw new RangeError(`battery level must be within 0..1, got ${level}`)
    return this.changeState({ battery_level: level })
  }

  setDoorOpen(open: boolean): Promise<void> {
    return this.changeState({ door_open: open })
  }

  setJammed(jammed: boolean): Promise<void> {
    return this.changeState({ jammed })
  }

  /** Resolves with the arguments of the next `event` that passes `filter`; call it before causing the event. */
  next<K extends keyof VirtualLockEvents>(
    event: K,
    filter?: (...args: VirtualLockEvents[K]) => boolean,
  ): Promise<VirtualLockEvents[K]> {
    return new Promise((resolve) => {
      const listener = (...args: VirtualLockEvents[K]): void => {
        if (filter && !filter(...args)) return
        this.off(event, listener as never)
        resolve(args)
      }
      this.on(event, listener as never)
    })
  }

  private onConnected(): void {
    this.counts.connects += 1
    this.emit('connected')
  }

  private onDisconnected(): void {
    this.counts.disconnects += 1
    this.emit('disconnected')
  }

  private onCommand(payload: Buffer): void {
    const command = parseJsonPayload(CommandSchema, payload)
    if (!command) {
      this.counts.invalidReceived += 1
      this.emit('invalid', payload)
      return
    }
    const known = this.recent.get(command.command_id)
    if (known) {
      // [docs/mqtt.md#commands] a repeated command_id is the same command: answer it again, never run it twice.
      // Still running: its final ack is on its way. Silenced: stays silent.
      this.counts.duplicatesReceived += 1
      this.emit('duplicate', command)
      if (known.finalAck) void this.sendAck(known.finalAck)
      return
    }
    const entry: RecentCommand = {}
    this.remember(command.command_id, entry)
    this.counts.commandsReceived += 1
    this.emit('command', command)
    this.execute(command, entry).catch((err: unknown) => this.emit('error', toError(err)))
  }

  private remember(commandId: string, entry: RecentCommand): void {
    this.recent.set(commandId, entry)
    const limit = this.options.recentCommandLimit ?? 1_000
    for (const oldest of this.recent.keys()) {
      if (this.recent.size <= limit) break
      this.recent.delete(oldest)
    }
  }

  private async execute(command: Command, entry: RecentCommand): Promise<void> {
    if (this.isExpired(command)) return this.settle(entry, this.errorAck(command, 'command_expired'), false)
    const plan = planCommand(this.behaviour, command.action, this.random)
    if (plan.outcome.kind === 'silent') {
      this.counts.silenced += 1
      this.emit('silenced', command)
      return
    }
    if (this.behaviour.sendAccepted) void this.sendAck({ command_id: command.command_id, status: 'accepted' })
    await this.sleep(plan.late ? this.msUntilLate(command) : plan.latencyMs)
    // [docs/mqtt.md#commands] an unlock must never run late: the wait may have carried us past the deadline.
    if (!plan.late && this.isExpired(command)) {
      return this.settle(entry, this.errorAck(command, 'command_expired'), false)
    }
    await this.settle(entry, this.perform(command, plan.outcome), plan.duplicate)
  }

  /** Moves the bolt (or fails to) and returns the final ack; `state` goes out before the ack. */
  private perform(command: Command, drawn: Settling): Ack {
    const outcome = drawn.kind === 'success' ? (this.refusalFromState(command) ?? drawn) : drawn
    if (outcome.kind === 'success') {
      this.drainBattery()
      void this.changeState({ locked: command.action === 'LOCK_DOOR', jammed: false })
      return { command_id: command.command_id, status: 'success', state: this.state }
    }
    if (outcome.type === 'lock_jammed') {
      this.drainBattery()
      void this.changeState({ jammed: true })
    }
    return this.errorAck(command, outcome.type)
  }

  /** What the lock's own state forbids: locking an open door, moving a bolt on an empty battery. */
  private refusalFromState(command: Command): Settling | undefined {
    if (command.action === 'LOCK_DOOR' && this.current.door_open) return { kind: 'error', type: 'door_open' }
    if (this.current.battery_level < REFUSE_BELOW_BATTERY) return { kind: 'error', type: 'low_battery' }
    return undefined
  }

  private drainBattery(): void {
    this.current.battery_level = Math.max(0, this.current.battery_level - this.behaviour.batteryDrainPerCommand)
  }

  private errorAck(command: Command, type: SimulatedErrorType): Ack {
    const error = { type, message: errorMessage(type) }
    return { command_id: command.command_id, status: 'error', error, state: this.state }
  }

  private async settle(entry: RecentCommand, ack: Ack, duplicate: boolean): Promise<void> {
    entry.finalAck = ack
    await Promise.all(duplicate ? [this.sendAck(ack), this.sendAck(ack)] : [this.sendAck(ack)])
  }

  private isExpired(command: Command): boolean {
    return this.now() >= Date.parse(command.expires_at)
  }

  private msUntilLate(command: Command): number {
    return Math.max(0, Date.parse(command.expires_at) + this.behaviour.lateAckMarginMs - this.now())
  }

  private async sendAck(ack: Ack): Promise<void> {
    if (!(await this.connection.publish('acks', JSON.stringify(ack), false))) return
    countAck(this.counts, ack)
    this.emit('acked', ack)
  }

  private async moveManually(locked: boolean, method: EventMethod): Promise<void> {
    const type = locked ? 'lock.locked' : 'lock.unlocked'
    await Promise.all([this.changeState({ locked }), this.publishEvent(type, method)])
  }

  private async changeState(change: Partial<LockState>): Promise<void> {
    Object.assign(this.current, change)
    await this.publishState()
  }

  private publishState(): Promise<boolean> {
    const state = this.state
    this.emit('state', state)
    return this.connection.publish('state', JSON.stringify(state), true)
  }

  private async publishEvent(type: DeviceEventType, method?: EventMethod): Promise<void> {
    const event: DeviceEvent = { event_id: randomUUID(), type, method, occurred_at: new Date(this.now()).toISOString() }
    if (!(await this.connection.publish('events', JSON.stringify(event), false))) return
    this.counts.eventsSent += 1
    this.emit('event', event)
  }

  private startKnobTimers(): void {
    const { flap, manualEventsPerMinute } = this.behaviour
    if (flap) {
      const interval = setInterval(() => this.flap(flap.downMs), flap.everyMs)
      this.timers.add(() => clearInterval(interval))
    }
    if (manualEventsPerMinute > 0) this.scheduleManualEvent(manualEventsPerMinute)
  }

  private scheduleManualEvent(perMinute: number): void {
    void this.sleep(nextManualEventDelayMs(perMinute, this.random)).then(() => {
      if (this.connected) void this.moveManually(!this.current.locked, 'manual')
      this.scheduleManualEvent(perMinute)
    })
  }

  /** A timer that stop()/kill() cancel; whatever awaits it is then never resumed. */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const cancel = (): void => this.clock.clearTimeout(handle)
      const handle = this.clock.setTimeout(() => {
        this.timers.delete(cancel)
        resolve()
      }, ms)
      this.timers.add(cancel)
    })
  }

  private clearTimers(): void {
    for (const cancel of this.timers) cancel()
    this.timers.clear()
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
