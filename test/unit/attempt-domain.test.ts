import { describe, expect, it } from 'vitest'
import type { Ack } from '../../devices/index.js'
import {
  applyAck,
  createAttempt,
  deviceError,
  expire,
  markRepublished,
  markSent,
  removeDevice,
  type AttemptRecord,
} from '../../src/domain/attempt.js'
import { iso } from '../../src/domain/clock.js'

const T0 = Date.parse('2026-01-01T00:00:00.000Z')
const at = (ms: number) => iso(T0 + ms)
const ID = '00000000-0000-4000-8000-000000000001'

function pending(overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  const { attempt } = createAttempt(
    {
      action_attempt_id: ID,
      action_type: 'LOCK_DOOR',
      device_id: 'dev',
      workspace_id: 'ws',
      now: at(0),
      deadline_at: at(8000),
    },
    true,
  )
  return { ...attempt, ...overrides }
}

function settled(status: 'success' | 'error', errorType = 'lock_jammed'): AttemptRecord {
  const ack: Ack =
    status === 'success'
      ? { command_id: ID, status: 'success' }
      : { command_id: ID, status: 'error', error: { type: errorType, message: 'x' } }
  return applyAck(pending(), ack, at(100)).attempt
}

const success: Ack = { command_id: ID, status: 'success' }
const accepted: Ack = { command_id: ID, status: 'accepted' }
const jammed: Ack = { command_id: ID, status: 'error', error: { type: 'lock_jammed', message: 'bolt stuck' } }

describe('attempt state machine', () => {
  it('creates a pending attempt for an online device, settles one for an offline device at once', () => {
    // Scenario: online → pending with a "created" entry; offline → error device_offline with a failed event.
    const online = createAttempt(
      {
        action_attempt_id: ID,
        action_type: 'UNLOCK_DOOR',
        device_id: 'd',
        workspace_id: 'w',
        now: at(0),
        deadline_at: at(10),
      },
      true,
    )
    expect(online.attempt).toMatchObject({ status: 'pending', result: null, error: null })
    expect(online.history.map((h) => h.kind)).toEqual(['created'])
    expect(online.events).toEqual([])
    const offline = createAttempt(
      {
        action_attempt_id: ID,
        action_type: 'UNLOCK_DOOR',
        device_id: 'd',
        workspace_id: 'w',
        now: at(0),
        deadline_at: at(10),
      },
      false,
    )
    expect(offline.attempt).toMatchObject({
      status: 'error',
      result: null,
      error: { type: 'device_offline' },
      completed_at: at(0),
    })
    expect(offline.history.map((h) => h.kind)).toEqual(['created', 'failed'])
    expect(offline.events.map((e) => e.event_type)).toEqual(['action_attempt.unlock_door.failed'])
  })

  type Row = {
    name: string
    from: () => AttemptRecord
    apply: (a: AttemptRecord) => ReturnType<typeof applyAck>
    status: AttemptRecord['status']
    changed: boolean
    history: string[]
    error?: string
    events?: string[]
  }
  const rows: Row[] = [
    {
      name: 'sent once',
      from: pending,
      apply: (a) => markSent(a, at(1)),
      status: 'pending',
      changed: true,
      history: ['sent'],
    },
    {
      name: 'sent twice is a no-op, and records nothing twice',
      from: () => pending({ sent_at: at(1) }),
      apply: (a) => markSent(a, at(2)),
      status: 'pending',
      changed: false,
      history: [],
    },
    {
      name: 'republished after a restart: recorded, still pending',
      from: () => pending({ sent_at: at(1) }),
      apply: (a) => markRepublished(a, at(3)),
      status: 'pending',
      changed: true,
      history: ['republished'],
    },
    {
      name: 'a settled attempt is not republished, and nothing is recorded',
      from: () => settled('success'),
      apply: (a) => markRepublished(a, at(200)),
      status: 'success',
      changed: false,
      history: [],
    },
    {
      name: 'accepted keeps it pending',
      from: pending,
      apply: (a) => applyAck(a, accepted, at(5)),
      status: 'pending',
      changed: true,
      history: ['sent', 'accepted'],
    },
    {
      name: 'a second accepted is a duplicate',
      from: () => pending({ accepted_at: at(4) }),
      apply: (a) => applyAck(a, accepted, at(5)),
      status: 'pending',
      changed: false,
      history: ['duplicate_ack'],
    },
    {
      name: 'success settles with a confirmed result and lock events',
      from: pending,
      apply: (a) => applyAck(a, success, at(5)),
      status: 'success',
      changed: true,
      history: ['sent', 'succeeded'],
      events: ['action_attempt.lock_door.succeeded', 'lock.locked'],
    },
    {
      name: 'a device error settles with its type',
      from: pending,
      apply: (a) => applyAck(a, jammed, at(5)),
      status: 'error',
      changed: true,
      history: ['sent', 'failed'],
      error: 'lock_jammed',
      events: ['action_attempt.lock_door.failed'],
    },
    {
      name: 'an unknown device error type becomes device_error',
      from: pending,
      apply: (a) =>
        applyAck(a, { command_id: ID, status: 'error', error: { type: 'solar_flare', message: 'odd' } }, at(5)),
      status: 'error',
      changed: true,
      history: ['sent', 'failed'],
      error: 'device_error',
    },
    {
      name: 'a second settling ack is refused',
      from: () => settled('success'),
      apply: (a) => applyAck(a, jammed, at(200)),
      status: 'success',
      changed: false,
      history: ['duplicate_ack'],
    },
    {
      name: 'an error after success changes nothing',
      from: () => settled('error'),
      apply: (a) => applyAck(a, success, at(200)),
      status: 'error',
      changed: false,
      history: ['duplicate_ack'],
      error: 'lock_jammed',
    },
    {
      name: 'an ack after the deadline settles as expired',
      from: pending,
      apply: (a) => applyAck(a, success, at(8001)),
      status: 'error',
      changed: true,
      history: ['late_ack', 'failed'],
      error: 'action_attempt_expired',
    },
    {
      name: 'an ack for an expired attempt is late and ignored',
      from: () => expire(pending(), at(8000)).attempt,
      apply: (a) => applyAck(a, success, at(9000)),
      status: 'error',
      changed: false,
      history: ['late_ack'],
      error: 'action_attempt_expired',
    },
    {
      name: 'the deadline expires a pending attempt',
      from: pending,
      apply: (a) => expire(a, at(8000)),
      status: 'error',
      changed: true,
      history: ['failed'],
      error: 'action_attempt_expired',
    },
    {
      name: 'the deadline is not due yet',
      from: pending,
      apply: (a) => expire(a, at(7999)),
      status: 'pending',
      changed: false,
      history: [],
    },
    {
      name: 'the deadline after success does nothing',
      from: () => settled('success'),
      apply: (a) => expire(a, at(9000)),
      status: 'success',
      changed: false,
      history: [],
    },
    {
      name: 'deleting the device settles as device_removed',
      from: pending,
      apply: (a) => removeDevice(a, at(10)),
      status: 'error',
      changed: true,
      history: ['failed'],
      error: 'device_removed',
    },
    {
      name: 'deleting the device after settlement does nothing',
      from: () => settled('success'),
      apply: (a) => removeDevice(a, at(10)),
      status: 'success',
      changed: false,
      history: [],
    },
  ]

  it.each(rows)('$name', (row) => {
    const before = row.from()
    const t = row.apply(before)
    expect(t.attempt.status).toBe(row.status)
    expect(t.changed).toBe(row.changed)
    expect(t.history.map((h) => h.kind)).toEqual(row.history)
    expect(t.attempt.error?.type).toBe(row.error)
    if (!row.changed) expect(t.attempt).toEqual(before)
    if (row.events) expect(t.events.map((e) => e.event_type)).toEqual(row.events)
    if (row.status === 'success')
      expect(t.attempt).toMatchObject({ result: { was_confirmed_by_device: true }, error: null })
    if (row.status === 'error') expect(t.attempt.result).toBeNull()
    if (t.settled) expect(t.attempt.completed_at).not.toBeNull()
  })

  it('keeps known device error types and the device message', () => {
    // Scenario: error mapping of docs/mqtt.md#error-types.
    for (const type of [
      'lock_jammed',
      'door_open',
      'low_battery',
      'command_expired',
      'unsupported_action',
      'device_busy',
    ]) {
      expect(deviceError({ type, message: 'm' })).toEqual({ type, message: 'm' })
    }
    expect(deviceError({ type: 'weird', message: 'kept' })).toEqual({ type: 'device_error', message: 'kept' })
  })

  it('marks the locked property only on a confirmed action', () => {
    // Scenario: success of LOCK_DOOR → locked true; of UNLOCK_DOOR → false; failure → untouched.
    expect(applyAck(pending(), success, at(1)).locked).toBe(true)
    expect(applyAck(pending({ action_type: 'UNLOCK_DOOR' }), success, at(1)).locked).toBe(false)
    expect(applyAck(pending(), jammed, at(1)).locked).toBeUndefined()
  })
})
