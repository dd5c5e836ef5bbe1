import { Outpost } from '@hookdeck/outpost-sdk'
import { expect } from 'vitest'
import type { DeliveryAttempt } from '../../src/domain/delivery.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { ADMIN_KEY, type ApiResponse, type TestLatchkey } from '../helpers/latchkey.js'
import { createWebhook, waitForAttempts, type Receiver, type Rig, type Workspace } from '../webhooks/helpers.js'

export { ADMIN_KEY }

/** The Outpost SDK pointed at latchkey's Outpost dialect. */
export function outpost(t: TestLatchkey, apiKey = ADMIN_KEY): Outpost {
  return new Outpost({ apiKey, serverURL: `${t.lk.httpUrl}/api/v1` })
}

/** A GET with a bearer key, for what the SDK cannot send (old spellings, bad values, the v1 dialect). */
export async function get(t: TestLatchkey, path: string, key: string | null = ADMIN_KEY): Promise<ApiResponse> {
  const res = await fetch(`${t.lk.httpUrl}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
}

export async function post(
  t: TestLatchkey,
  path: string,
  body: unknown,
  key: string | null = ADMIN_KEY,
): Promise<ApiResponse> {
  const res = await fetch(`${t.lk.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
}

/** Creates a device (→ a device.added event) and returns the event id. */
export async function addDevice(t: TestLatchkey, key?: string): Promise<{ deviceId: string; eventId: string }> {
  const created = await t.call('/devices/create', { name: 'door' }, key)
  const deviceId = created.body.mqtt_credentials.username as string
  const listed = await t.call('/events/list', { device_id: deviceId, event_type: 'device.added' }, key)
  return { deviceId, eventId: listed.body.events[0].event_id }
}

export interface Fixture {
  t: TestLatchkey
  clock: FakeClock
  b: Workspace
  ok: Receiver
  flaky: Receiver
  /** A's webhook for every event (answers 204), A's for device.added (answers 503), B's for every event. */
  hooks: { all: string; flaky: string; other: string }
  events: { e1: string; e2: string; e3: string; eb: string }
  /** Every attempt made, read from the store. */
  attempts: DeliveryAttempt[]
}

/**
 * Two tenants. A: device 1 added at 23:59:50 (to both webhooks; the 503 one retries once 5 s later and gives up),
 * then at midnight device 2 added (503 → a retry scheduled) and device 1 deleted. B: one device added at midnight.
 */
export async function twoTenants(rig: Rig, env: Record<string, string> = {}): Promise<Fixture> {
  const clock = new FakeClock(Date.parse('2026-03-01T23:59:50.000Z'))
  const t = await rig.latchkey({ clock, env: { WEBHOOK_RETRY_SCHEDULE: '5', ...env } })
  const b = await rig.workspace(t)
  const ok = await rig.receiver()
  const flaky = await rig.receiver(() => ({ status: 503, body: 'busy' }))
  const okB = await rig.receiver()
  const all = (await createWebhook(t, ok.url)).webhook_id as string
  const flakyHook = (await createWebhook(t, flaky.url, ['device.added'])).webhook_id as string
  const other = (await createWebhook(t, okB.url, undefined, b.apiKey)).webhook_id as string

  const d1 = await addDevice(t)
  await waitForAttempts(t, d1.eventId, all, 1)
  await waitForAttempts(t, d1.eventId, flakyHook, 1)
  clock.advance(10_000)
  await waitForAttempts(t, d1.eventId, flakyHook, 2)

  const d2 = await addDevice(t)
  await t.call('/devices/delete', { device_id: d1.deviceId })
  const deleted = await t.call('/events/list', { event_type: 'device.deleted' })
  const e3 = deleted.body.events[0].event_id as string
  const db = await addDevice(t, b.apiKey)
  const pairs: Array<[string, string, number]> = [
    [d1.eventId, all, 1],
    [d1.eventId, flakyHook, 2],
    [d2.eventId, all, 1],
    [d2.eventId, flakyHook, 1],
    [e3, all, 1],
    [db.eventId, other, 1],
  ]
  const attempts: DeliveryAttempt[] = []
  for (const [eventId, webhookId, n] of pairs) attempts.push(...(await waitForAttempts(t, eventId, webhookId, n)))
  expect(attempts).toHaveLength(7)
  return {
    t,
    clock,
    b,
    ok,
    flaky,
    hooks: { all, flaky: flakyHook, other },
    events: { e1: d1.eventId, e2: d2.eventId, e3, eb: db.eventId },
    attempts,
  }
}

/** Attempts newest first, as the lists order them: by time, then by insertion. */
export function newestFirst(attempts: DeliveryAttempt[]): DeliveryAttempt[] {
  return [...attempts].sort((x, y) =>
    x.attempted_at === y.attempted_at ? y.seq - x.seq : x.attempted_at < y.attempted_at ? 1 : -1,
  )
}

export function ids(attempts: Array<{ attempt_id: string } | { id?: string | undefined }>): string[] {
  return attempts.map((a) => ('attempt_id' in a ? a.attempt_id : (a.id as string)))
}
