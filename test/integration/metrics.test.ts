import { describe, expect, vi } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import { familyOf, parseExposition, samplesOf, scrape, valueOf } from '../helpers/prometheus.js'
import { createWebhook, it } from '../webhooks/helpers.js'

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000

describe('/metrics', () => {
  it('times and counts real lock attempts by action, status and error type', async ({ rig }) => {
    // Scenario: one lock acks `accepted` then success, another jams → both attempts are in the histograms and
    // counters, with the durations of their own timelines.
    const t = await rig.latchkey()
    const good = await rig.lock(t, { behaviour: { sendAccepted: true, ackLatencyMs: 20 } })
    const jammed = await rig.lock(t, { behaviour: { jam: 1 } })
    const ok = (await t.call('/locks/lock_door', { device_id: good.deviceId, sync: true })).body.action_attempt
    const bad = (await t.call('/locks/unlock_door', { device_id: jammed.deviceId, sync: true })).body.action_attempt
    expect(ok.status).toBe('success')
    expect(bad.error.type).toBe('lock_jammed')

    const m = await scrape(t.lk.httpUrl)
    const duration = 'latchkey_action_attempt_duration_seconds'
    const success = { action_type: 'LOCK_DOOR', status: 'success' }
    const failure = { action_type: 'UNLOCK_DOOR', status: 'error' }
    expect(valueOf(m, `${duration}_count`, success)).toBe(1)
    expect(valueOf(m, `${duration}_sum`, success)).toBeCloseTo(seconds(ok.created_at, ok.completed_at), 6)
    expect(valueOf(m, `${duration}_count`, failure)).toBe(1)
    expect(valueOf(m, `${duration}_sum`, failure)).toBeCloseTo(seconds(bad.created_at, bad.completed_at), 6)
    // The +Inf bucket holds every observation; a bucket below the duration holds none of it.
    expect(valueOf(m, `${duration}_bucket`, { ...success, le: '+Inf' })).toBe(1)
    expect(valueOf(m, `${duration}_bucket`, { ...success, le: '0.001' })).toBe(0)

    // error_type on the error series only.
    expect(samplesOf(m, 'latchkey_action_attempts_total').map((s) => s.labels)).toEqual(
      expect.arrayContaining([success, { ...failure, error_type: 'lock_jammed' }]),
    )
    expect(valueOf(m, 'latchkey_action_attempts_total', success)).toBe(1)
    expect(valueOf(m, 'latchkey_action_attempts_total', { ...failure, error_type: 'lock_jammed' })).toBe(1)

    // Round trip: sent_at → first ack (`accepted` for the first lock, the error ack for the second).
    const rtt = 'latchkey_command_round_trip_seconds'
    expect(valueOf(m, `${rtt}_count`)).toBe(2)
    const expected = seconds(ok.sent_at, ok.accepted_at) + seconds(bad.sent_at, bad.completed_at)
    expect(valueOf(m, `${rtt}_sum`)).toBeCloseTo(expected, 6)
    expect(seconds(ok.sent_at, ok.accepted_at)).toBeLessThan(seconds(ok.sent_at, ok.completed_at))

    expect(valueOf(m, 'latchkey_devices_connected')).toBe(2)
    expect(valueOf(m, 'latchkey_action_attempts_pending')).toBe(0)
  })

  it('has a HELP and a TYPE line for every family, process metrics included', async ({ rig }) => {
    // Scenario: a scrape after some traffic → every sample belongs to a family with a non-empty HELP.
    const t = await rig.latchkey()
    await rig.lock(t)
    const res = await fetch(`${t.lk.httpUrl}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const m = parseExposition(await res.text())
    expect(m.samples.length).toBeGreaterThan(50)
    for (const sample of m.samples) {
      const family = familyOf(m, sample.name)
      expect(family, sample.name).toBeDefined()
      expect(m.help.get(family as string), sample.name).toMatch(/\S/)
    }
    for (const family of m.type.keys()) expect(m.help.get(family), family).toMatch(/\S/)
    for (const name of [
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'latchkey_mqtt_refusals_total',
      'latchkey_mqtt_messages_dropped_total',
      'latchkey_webhook_deliveries_total',
      'latchkey_webhook_delivery_duration_seconds',
      'latchkey_webhook_deliveries_held',
      'latchkey_webhook_oldest_owed_delivery_age_seconds',
      'latchkey_webhook_deliveries_queued',
    ]) {
      expect(m.type.has(name), name).toBe(true)
    }
  })

  it('counts webhook deliveries, their durations, held deliveries and the age of the oldest owed one', async ({
    rig,
  }) => {
    // Scenario: one event to three webhooks: 200 (delivered), 500 (owed, retried in 300 s), 410 (disables the
    // webhook: held). A minute later the oldest owed delivery is 60 s old.
    const clock = new FakeClock(Date.parse('2026-01-01T00:00:00.000Z'))
    const t = await rig.latchkey({ clock, env: { WEBHOOK_RETRY_SCHEDULE: '300' } })
    const codes = [200, 500, 410]
    for (const status of codes) {
      const receiver = await rig.receiver(() => ({ status }))
      await createWebhook(t, receiver.url, ['device.added'])
    }
    await t.call('/devices/create', { name: 'front door' })
    await vi.waitFor(() => expect(t.lk.metrics.total('webhook_attempts_total')).toBe(3), { timeout: 10_000 })
    clock.advance(60_000)

    const m = await scrape(t.lk.httpUrl)
    expect(valueOf(m, 'latchkey_webhook_deliveries_total', { status: 'delivered' })).toBe(1)
    expect(samplesOf(m, 'latchkey_webhook_deliveries_total')).toHaveLength(1)
    expect(valueOf(m, 'latchkey_webhook_attempts_total', { status: 'failed' })).toBe(2)
    const duration = 'latchkey_webhook_delivery_duration_seconds_count'
    expect(valueOf(m, duration, { outcome: 'success' })).toBe(1)
    expect(valueOf(m, duration, { outcome: 'http_error' })).toBe(2)
    expect(valueOf(m, 'latchkey_webhooks_disabled_total', { reason: 'gone' })).toBe(1)
    expect(valueOf(m, 'latchkey_webhook_deliveries_held')).toBe(1)
    expect(valueOf(m, 'latchkey_webhook_deliveries_queued')).toBe(1)
    expect(valueOf(m, 'latchkey_webhook_oldest_owed_delivery_age_seconds')).toBe(60)
  })

  it('asks for METRICS_TOKEN when it is set', async ({ rig }) => {
    // Scenario: METRICS_TOKEN set → no header or a wrong token is 401, the right one is 200.
    const token = 'metrics-token-0123456789'
    const t = await rig.latchkey({ env: { METRICS_TOKEN: token } })
    const get = (authorization?: string) =>
      fetch(`${t.lk.httpUrl}/metrics`, authorization ? { headers: { authorization } } : {})
    const missing = await get()
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(await missing.text()).not.toContain('latchkey_')
    expect((await get(`Bearer ${token}x`)).status).toBe(401)
    expect((await get(`Bearer ${t.apiKey}`)).status).toBe(401)
    const ok = await get(`Bearer ${token}`)
    expect(ok.status).toBe(200)
    expect(await ok.text()).toContain('# HELP latchkey_http_requests_total')
  })
})
