import { rmSync } from 'node:fs'
import { describe, expect, vi } from 'vitest'
import { newId } from '../../src/app/ids.js'
import type { Store } from '../../src/app/store.js'
import { iso } from '../../src/domain/clock.js'
import { applyState } from '../../src/domain/device.js'
import type { LatchkeyEvent } from '../../src/domain/events.js'
import { newWebhook } from '../../src/domain/webhook.js'
import { eventNotices } from '../../src/store/event-notices.js'
import { createStore } from '../../src/store/index.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'
import { addDevice, dropTestDatabase, TEST_STORE, testDatabaseEnv } from '../helpers/store.js'

// After each commit the store tells the dispatcher which events it recorded and how many deliveries it queued since
// the last notice: on zero the dispatcher does not read the outbox, so an undercount would strand deliveries.

type Notice = [events: LatchkeyEvent[], deliveriesQueued: number | undefined]

const it = base.extend<{ store: { store: Store; notices: Notice[] } }>({
  store: async ({ defer }, use) => {
    const dir = tempDataDir()
    defer(() => rmSync(dir, { recursive: true, force: true }))
    const url = TEST_STORE === 'postgres' ? (testDatabaseEnv(dir).DATABASE_URL as string) : undefined
    if (url) defer(() => dropTestDatabase(dir))
    const notices: Notice[] = []
    const store = await createStore(
      { DATA_DIR: dir, DATABASE_URL: url, DATABASE_POOL_MAX: 4 },
      { newId, now: () => iso(Date.now()), onEvents: (events, count) => void notices.push([events, count]) },
    )
    defer(() => store.close())
    await use({ store, notices })
  },
})

/** A workspace with one lock; `webhooks` webhooks on `*` in it. */
async function seed(store: Store, workspaceId: string, webhooks: number): Promise<string> {
  const at = iso(Date.now())
  await store.workspaces.create({ workspace_id: workspaceId, name: workspaceId, created_at: at })
  for (let k = 0; k < webhooks; k++) {
    const webhook_id = newId()
    const secret = `whsec_${Buffer.alloc(32, k + 1).toString('base64')}`
    const url = `https://receiver.example/${webhook_id}`
    await store.webhooks.create(
      newWebhook({ webhook_id, workspace_id: workspaceId, url, event_types: ['*'], secret }, at),
    )
  }
  return addDevice(store.devices, workspaceId)
}

describe('the notice of committed events', () => {
  it('counts the deliveries each commit queued, and zero for events no webhook takes', async ({
    store: { store, notices },
  }) => {
    // Scenario: a workspace with two webhooks and one with none; each adds a lock (one event each), then each lock
    // reports a low battery (one event each) → the notices of the first workspace count two deliveries per event,
    // those of the second zero.
    const busy = await seed(store, 'ws-hooks', 2)
    const quiet = await seed(store, 'ws-quiet', 0)
    const low = (deviceId: string) =>
      store.devices.change(deviceId, (d) => applyState(d, { locked: true, battery_level: 0.1 }, iso(Date.now())))
    await low(busy)
    await low(quiet)
    const counted = notices
      .filter(([events]) => events.length > 0)
      .map(([events, count]) => [events.map((e) => `${e.workspace_id} ${e.event_type}`), count])
    expect(counted).toEqual([
      [['ws-hooks device.added'], 2],
      [['ws-quiet device.added'], 0],
      [['ws-hooks device.low_battery'], 2],
      [['ws-quiet device.low_battery'], 0],
    ])
  })
})

describe('eventNotices', () => {
  it('hands the count to the next notice with events, and only once', () => {
    // Scenario: deliveries counted across a commit without events → that commit's notice says 0 and keeps the
    // count; the next notice with events carries it; the one after says 0.
    const notify = vi.fn()
    const notices = eventNotices(notify)
    const event = { event_id: 'e' } as LatchkeyEvent
    notices.deliveriesQueued(2)
    notices.onEvents([])
    notices.deliveriesQueued(1)
    notices.onEvents([event])
    notices.onEvents([event])
    expect(notify.mock.calls).toEqual([
      [[], 0],
      [[event], 3],
      [[event], 0],
    ])
  })
})
