import { describe, expect, it, vi } from 'vitest'
import type { Command } from '../../devices/index.js'
import { createAttemptService, type CommandSender } from '../../src/app/attempts.js'
import { createBus } from '../../src/app/bus.js'
import { newId } from '../../src/app/ids.js'
import { Metrics } from '../../src/app/metrics.js'
import { iso } from '../../src/domain/clock.js'
import { initialProps, type DeviceRecord } from '../../src/domain/device.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** A sender whose broker acknowledgement (PUBACK) the test releases by hand. */
function heldSender() {
  const sent: Command[] = []
  let release: () => void = () => {}
  const puback = new Promise<void>((resolve) => (release = resolve))
  const sender: CommandSender = {
    async send(_deviceId, command) {
      sent.push(command)
      await puback
    },
  }
  return { sender, sent, release: () => release() }
}

function setup() {
  const clock = new FakeClock()
  const store = createSqliteStore({ filename: ':memory:', newId, now: () => iso(clock.now()) })
  const device: DeviceRecord = {
    device_id: newId(),
    workspace_id: newId(),
    display_name: 'Front door',
    nickname: null,
    custom_metadata: {},
    created_at: iso(clock.now()),
    can_remotely_lock: true,
    can_remotely_unlock: true,
    props: { ...initialProps(), online: true },
  }
  const held = heldSender()
  const attempts = attemptService(store, clock, device, held.sender)
  return { clock, store, device, attempts, held }
}

/** One process's attempt service over `store`; a second one over the same store is that process restarted. */
function attemptService(
  store: ReturnType<typeof createSqliteStore>,
  clock: FakeClock,
  device: DeviceRecord,
  commands: CommandSender,
) {
  return createAttemptService({
    store: { attempts: store.attempts, devices: { get: async () => device } },
    bus: createBus(),
    clock,
    metrics: new Metrics(),
    commands,
    newId,
    actionTimeoutMs: 8000,
    lockResponseWaitMs: 0,
    onError: (error) => {
      throw error
    },
  })
}

/**
 * An attempt sent and PUBACKed by one service, which then stops; a second service on the same store (the restarted
 * process) has recovered it, with a sender whose PUBACK the test releases.
 */
async function restartedWithPending() {
  const { clock, store, device, attempts, held } = setup()
  const resent = heldSender()
  const restarted = attemptService(store, clock, device, resent.sender)
  const attempt = await attempts.request(device.workspace_id, 'LOCK_DOOR', { device_id: device.device_id, sync: false })
  held.release()
  await vi.waitFor(async () =>
    expect((await store.attempts.getById(attempt.action_attempt_id))?.sent_at).not.toBeNull(),
  )
  attempts.close()
  expect(await restarted.recover()).toEqual({ expired: 0, rearmed: 1 })
  return { store, device, attempt, restarted, resent }
}

describe('attempt history agrees with its fields', () => {
  it('commits `sent` with sent_at when the lock acks before the broker PUBACK is recorded', async () => {
    // Scenario: the lock's ack is handled (urgent write) before the PUBACK's own write. A crash right after the
    // ack's commit used to leave `sent_at` set with no `sent` entry; here the state after that commit is read.
    const { store, device, attempts, held } = setup()
    try {
      const attempt = await attempts.request(device.workspace_id, 'LOCK_DOOR', {
        device_id: device.device_id,
        sync: false,
      })
      expect(held.sent).toHaveLength(1)
      await attempts.handleAck(device.device_id, { command_id: attempt.action_attempt_id, status: 'success' })

      const afterAck = await store.attempts.getById(attempt.action_attempt_id)
      const kinds = (await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)
      expect(afterAck).toMatchObject({ status: 'success' })
      expect(afterAck?.sent_at).not.toBeNull()
      expect(kinds).toEqual(['created', 'sent', 'succeeded'])

      // The PUBACK's write, when it comes, records nothing twice.
      const transitions = vi.spyOn(store.attempts, 'transition')
      held.release()
      await vi.waitFor(() => expect(transitions).toHaveBeenCalledOnce())
      await transitions.mock.results[0]?.value
      const settled = await store.attempts.getById(attempt.action_attempt_id)
      expect(settled?.sent_at).toBe(afterAck?.sent_at)
      expect((await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)).toEqual([
        'created',
        'sent',
        'succeeded',
      ])
    } finally {
      attempts.close()
      await store.close()
    }
  })

  it("records `republished` before the command goes out again, so the lock's ack follows it", async () => {
    // Scenario: latchkey restarts with the attempt pending; the lock announces itself, the command is published
    // again, and the lock's ack is handled before the broker's PUBACK of that publish resolves.
    const { store, device, attempt, restarted, resent } = await restartedWithPending()
    try {
      await restarted.deviceOnline(device.device_id)
      await vi.waitFor(() => expect(resent.sent).toHaveLength(1))
      expect(resent.sent[0]?.command_id).toBe(attempt.action_attempt_id)
      await restarted.handleAck(device.device_id, { command_id: attempt.action_attempt_id, status: 'success' })
      // The PUBACK's write comes last, and records nothing: the ack found `sent_at` set.
      const transitions = vi.spyOn(store.attempts, 'transition')
      resent.release()
      await vi.waitFor(() => expect(transitions).toHaveBeenCalledOnce())
      await transitions.mock.results[0]?.value

      expect((await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)).toEqual([
        'created',
        'sent',
        'republished',
        'succeeded',
      ])
    } finally {
      restarted.close()
      await store.close()
    }
  })

  it('does not publish again a recovered attempt that settled before its lock came back', async () => {
    // Scenario: after the restart the attempt settles (here by a late-delivered ack) before the lock's `online`.
    const { store, device, attempt, restarted, resent } = await restartedWithPending()
    try {
      await restarted.handleAck(device.device_id, { command_id: attempt.action_attempt_id, status: 'success' })
      const transitions = vi.spyOn(store.attempts, 'transition')
      await restarted.deviceOnline(device.device_id)
      await vi.waitFor(() => expect(transitions).toHaveBeenCalledOnce())
      await transitions.mock.results[0]?.value

      expect(resent.sent).toEqual([])
      expect((await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)).not.toContain('republished')
    } finally {
      restarted.close()
      await store.close()
    }
  })

  it('commits `sent` and sent_at together when the PUBACK comes first', async () => {
    // Scenario: the normal order. Every history and field pair agrees at every commit.
    const { store, device, attempts, held } = setup()
    try {
      const attempt = await attempts.request(device.workspace_id, 'UNLOCK_DOOR', {
        device_id: device.device_id,
        sync: false,
      })
      held.release()
      await vi.waitFor(async () =>
        expect((await store.attempts.getById(attempt.action_attempt_id))?.sent_at).not.toBeNull(),
      )
      expect((await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)).toEqual(['created', 'sent'])
      await attempts.handleAck(device.device_id, { command_id: attempt.action_attempt_id, status: 'accepted' })
      await attempts.handleAck(device.device_id, { command_id: attempt.action_attempt_id, status: 'success' })
      expect((await store.attempts.history(attempt.action_attempt_id)).map((h) => h.kind)).toEqual([
        'created',
        'sent',
        'accepted',
        'succeeded',
      ])
    } finally {
      attempts.close()
      await store.close()
    }
  })
})
