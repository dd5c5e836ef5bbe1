import { describe, expect, vi } from 'vitest'
import { DeviceStateSchema, deviceTopic, type LockAction } from '../../devices/index.js'
import type { BehaviourInput } from '../../simulator/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { buildCommand, it } from './helpers.js'

describe('VirtualLock commands', () => {
  it('acks success with the new state and publishes that state first', async ({ mqtt }) => {
    // Scenario: an instant lock receives UNLOCK_DOOR, unlocks, publishes state, acks success with the state.
    const lock = await mqtt.startLock({ initialState: { locked: true } })
    const command = buildCommand({ action: 'UNLOCK_DOOR' })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack).toMatchObject({ command_id: command.command_id, status: 'success', state: { locked: false } })
    const ackIndex = mqtt.received.findIndex((m) => m.topic === deviceTopic(lock.deviceId, 'acks'))
    const stateIndex = mqtt.received.findLastIndex((m) => m.topic === deviceTopic(lock.deviceId, 'state'))
    expect(stateIndex).toBeLessThan(ackIndex)
    expect(DeviceStateSchema.parse(JSON.parse(mqtt.received[stateIndex]?.payload ?? '')).locked).toBe(false)
    expect(lock.state.locked).toBe(false)
    expect(lock.counters).toMatchObject({ commandsReceived: 1, acksSent: { success: 1, error: 0 } })
  })

  it('sends accepted before the final ack when asked to', async ({ mqtt }) => {
    // Scenario: sendAccepted with some latency; the orchestrator sees accepted, then success.
    const lock = await mqtt.startLock({ behaviour: { sendAccepted: true, ackLatencyMs: [5, 15] } })
    const command = buildCommand({ action: 'LOCK_DOOR' })
    await mqtt.send(lock.deviceId, command)
    const acks = await mqtt.waitForAcks(lock.deviceId, command.command_id, 2)
    expect(acks.map((a) => a.status)).toEqual(['accepted', 'success'])
  })

  const errorKnobs: Array<[keyof BehaviourInput, LockAction, string]> = [
    ['jam', 'UNLOCK_DOOR', 'lock_jammed'],
    ['doorOpen', 'LOCK_DOOR', 'door_open'],
    ['lowBattery', 'UNLOCK_DOOR', 'low_battery'],
    ['busy', 'LOCK_DOOR', 'device_busy'],
    ['unsupported', 'UNLOCK_DOOR', 'unsupported_action'],
  ]
  it.for(errorKnobs)('knob %s=1 answers %s with %s', async ([knob, action, type], { mqtt }) => {
    // Scenario: a knob at probability 1 turns every command into that device error, state unchanged (but jammed).
    const lock = await mqtt.startLock({ behaviour: { [knob]: 1 }, initialState: { locked: action === 'UNLOCK_DOOR' } })
    const command = buildCommand({ action })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack).toMatchObject({ status: 'error', error: { type, message: expect.any(String) } })
    expect(ack?.error?.message.length).toBeGreaterThan(0)
    expect(lock.state.locked).toBe(action === 'UNLOCK_DOOR')
    expect(lock.state.jammed).toBe(type === 'lock_jammed')
    await expect.poll(() => lock.counters.acksSent.errorsByType[type]).toBe(1)
  })

  it('lets an unlock through when only the door-open knob is set', async ({ mqtt }) => {
    // Scenario: door_open refuses LOCK_DOOR only; unlocking with the door open is fine.
    const lock = await mqtt.startLock({ behaviour: { doorOpen: 1 } })
    const command = buildCommand({ action: 'UNLOCK_DOOR' })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.status).toBe('success')
  })

  it('refuses to lock while its door is open, from state rather than a knob', async ({ mqtt }) => {
    // Scenario: setDoorOpen(true) then LOCK_DOOR gives door_open with no knob at all.
    const lock = await mqtt.startLock({ initialState: { locked: false } })
    await lock.setDoorOpen(true)
    const command = buildCommand({ action: 'LOCK_DOOR' })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.error?.type).toBe('door_open')
  })

  it('drains its battery per command until it refuses with low_battery', async ({ mqtt }) => {
    // Scenario: drain 0.5 from 0.5: the first command empties the battery, the second is refused.
    const lock = await mqtt.startLock({
      behaviour: { batteryDrainPerCommand: 0.5 },
      initialState: { battery_level: 0.5 },
    })
    const first = buildCommand()
    await mqtt.send(lock.deviceId, first)
    const [ok] = await mqtt.waitForAcks(lock.deviceId, first.command_id)
    expect(ok).toMatchObject({ status: 'success', state: { battery_level: 0 } })
    const second = buildCommand({ action: 'LOCK_DOOR' })
    await mqtt.send(lock.deviceId, second)
    const [refused] = await mqtt.waitForAcks(lock.deviceId, second.command_id)
    expect(refused?.error?.type).toBe('low_battery')
  })

  it('never acks when silent', async ({ mqtt }) => {
    // Scenario: silent=1 swallows the command; a later event from the same lock proves no ack went out before it.
    const lock = await mqtt.startLock({ behaviour: { silent: 1 } })
    const silenced = lock.next('silenced')
    const command = buildCommand()
    await mqtt.send(lock.deviceId, command)
    const [swallowed] = await silenced
    expect(swallowed.command_id).toBe(command.command_id)
    // One connection delivers in order: once the tamper event arrives, any ack sent before it has arrived too.
    await lock.reportTamper()
    await mqtt.waitFor((m) => m.topic === deviceTopic(lock.deviceId, 'events'))
    expect(mqtt.acks(lock.deviceId, command.command_id)).toEqual([])
    expect(lock.counters).toMatchObject({ commandsReceived: 1, silenced: 1, acksSent: { success: 0, error: 0 } })
  })

  it('sends two identical final acks with the duplicate knob', async ({ mqtt }) => {
    // Scenario: duplicateAck=1; the orchestrator receives the same success ack twice for one execution.
    const lock = await mqtt.startLock({ behaviour: { duplicateAck: 1 } })
    const command = buildCommand()
    await mqtt.send(lock.deviceId, command)
    const acks = await mqtt.waitForAcks(lock.deviceId, command.command_id, 2)
    expect(acks).toHaveLength(2)
    expect(acks[0]).toEqual(acks[1])
    expect(lock.counters.commandsReceived).toBe(1)
  })

  it('answers a repeated command_id with the same ack without running it again', async ({ mqtt }) => {
    // Scenario: UNLOCK acked, then a manual lock, then the same UNLOCK again: same ack re-sent, door stays locked.
    const lock = await mqtt.startLock({ initialState: { locked: true } })
    const command = buildCommand({ action: 'UNLOCK_DOOR' })
    await mqtt.send(lock.deviceId, command)
    await mqtt.waitForAcks(lock.deviceId, command.command_id)
    await lock.manualLock()
    const duplicate = lock.next('duplicate')
    await mqtt.send(lock.deviceId, command)
    await duplicate
    const acks = await mqtt.waitForAcks(lock.deviceId, command.command_id, 2)
    expect(acks[1]).toEqual(acks[0])
    expect(lock.state.locked).toBe(true)
    expect(lock.counters).toMatchObject({ commandsReceived: 1, duplicatesReceived: 1 })
  })

  it('refuses a command that arrives after expires_at', async ({ mqtt }) => {
    // Scenario: the command's deadline has already passed by the lock's clock: command_expired, nothing moves.
    const lock = await mqtt.startLock({ initialState: { locked: true } })
    const command = buildCommand({ expires_at: new Date(Date.now() - 1).toISOString() })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack).toMatchObject({ status: 'error', error: { type: 'command_expired' } })
    expect(lock.state.locked).toBe(true)
  })

  it('checks expiry again after its latency wait', async ({ mqtt }) => {
    // Scenario: valid on arrival, but the lock's clock passes expires_at during the latency wait: never unlocks late.
    const expiresAt = Date.now() + 60_000
    let reads = 0
    const now = (): number => (reads++ === 0 ? expiresAt - 1_000 : expiresAt + 1)
    const lock = await mqtt.startLock({ now, behaviour: { ackLatencyMs: 1 }, initialState: { locked: true } })
    const command = buildCommand({ expires_at: new Date(expiresAt).toISOString() })
    await mqtt.send(lock.deviceId, command)
    const [ack] = await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(ack?.error?.type).toBe('command_expired')
    expect(lock.state.locked).toBe(true)
  })

  it('acks success only after expires_at with the late knob', async ({ mqtt }) => {
    // Scenario: lateAck=1 models firmware ignoring the deadline; on the lock's own (fake) clock the success ack goes
    // out at expires_at + lateAckMarginMs, not a millisecond before.
    const clock = new FakeClock(Date.now())
    const lock = await mqtt.startLock({
      now: () => clock.now(),
      timers: clock,
      behaviour: { lateAck: 1, lateAckMarginMs: 20 },
    })
    const expiresAt = clock.now() + 150
    const command = buildCommand({ expires_at: new Date(expiresAt).toISOString() })
    const received = lock.next('command')
    await mqtt.send(lock.deviceId, command)
    await received
    await vi.waitFor(() => expect(clock.pending).toBe(1))
    clock.advance(169)
    expect(clock.pending).toBe(1)
    expect(lock.counters.acksSent.success).toBe(0)
    const acked = lock.next('acked')
    clock.advance(1)
    await acked
    expect(clock.now()).toBe(expiresAt + 20)
    await mqtt.waitForAcks(lock.deviceId, command.command_id)
    expect(mqtt.acks(lock.deviceId, command.command_id)[0]?.status).toBe('success')
  })
})
