import { readFileSync, rmSync } from 'node:fs'
import { describe, expect } from 'vitest'
import { startChild } from '../helpers/child.js'
import { ADMIN_KEY, request, tempDataDir } from '../helpers/latchkey.js'
import { it, verifyBoth, type Receiver } from './helpers.js'

const ENV = {
  ADMIN_API_KEY: ADMIN_KEY,
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_RETRY_SCHEDULE: '2,2,2,2,2,2,2,2,2,2',
  // The restart is the same instance: on PostgreSQL it resumes the delivery leases it held when it died at once,
  // rather than after DELIVERY_LEASE_MS as another instance would (docs/scale-out.md#deliveries).
  INSTANCE_ID: 'crash-test',
}

describe('crash and restart', () => {
  it('delivers everything committed before a SIGKILL after the restart, deduplicable by webhook-id', async ({
    rig,
  }) => {
    // Scenario: five events committed; one receiver answers 503, another drops every connection; SIGKILL; both
    // receivers become healthy; restart on the same data → every event arrives at both, signed, same webhook-id.
    const dataDir = tempDataDir()
    rig.defer(async () => rmSync(dataDir, { recursive: true, force: true }))
    let healthy = false
    const flaky = await rig.receiver(() => (healthy ? { status: 204 } : { status: 503 }))
    const late = await rig.receiver(() => (healthy ? { status: 204 } : 'reset'))

    const first = await startChild({ ...ENV, DATA_DIR: dataDir })
    rig.defer(() => first.kill())
    const { api_key: apiKey } = JSON.parse(readFileSync(`${dataDir}/bootstrap.json`, 'utf8')) as { api_key: string }
    const call = (url: string, path: string, body: unknown) => request(url, path, body, apiKey)
    const flakyHook = (await call(first.httpUrl, '/webhooks/create', { url: flaky.url, event_types: ['device.added'] }))
      .body.webhook
    const lateHook = (await call(first.httpUrl, '/webhooks/create', { url: late.url, event_types: ['device.added'] }))
      .body.webhook
    for (let i = 0; i < 5; i++)
      expect((await call(first.httpUrl, '/devices/create', { name: `door ${i}` })).status).toBe(200)
    const listed = await call(first.httpUrl, '/events/list', { event_type: 'device.added' })
    const eventIds = listed.body.events.map((e: { event_id: string }) => e.event_id).sort()
    expect(eventIds).toHaveLength(5)
    // Each event reached the flaky receiver once (503) and is committed with a retry pending: now crash.
    await flaky.until((r) => new Set(r.map((x) => x.id)).size === 5)
    await first.kill('SIGKILL')
    expect(first.process.signalCode).toBe('SIGKILL')

    healthy = true
    const before = flaky.received.length
    const lateBefore = late.received.length
    const second = await startChild({ ...ENV, DATA_DIR: dataDir })
    rig.defer(() => second.kill('SIGTERM'))
    const ids = (received: Receiver['received']) => [...new Set(received.map((r) => r.id))].sort()
    await flaky.until((r) => ids(r.slice(before)).length === 5, 15_000)
    await late.until((r) => ids(r.slice(lateBefore)).length === 5, 15_000)
    expect(ids(flaky.received.slice(before))).toEqual(eventIds)
    expect(ids(late.received.slice(lateBefore))).toEqual(eventIds)
    for (const request of flaky.received) verifyBoth(flakyHook.secret, request)
    for (const request of late.received) verifyBoth(lateHook.secret, request)
    // A retry carries the id of the first try: the receiver's dedupe key.
    expect(ids(flaky.received.slice(0, before))).toEqual(eventIds)
  })
})
