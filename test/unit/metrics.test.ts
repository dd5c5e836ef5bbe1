import { describe, expect, it } from 'vitest'
import { Metrics } from '../../src/app/metrics.js'
import { parseExposition, valueOf } from '../helpers/prometheus.js'

describe('metrics wrapper', () => {
  it('keys a series by its labels, not by their order, and escapes label values', async () => {
    // Scenario: the same labels in two orders are one series; a value with a quote, a backslash and a newline
    // comes back intact from the text exposition.
    const metrics = new Metrics()
    metrics.inc('http_requests_total', { route: '/a', status: '200' })
    metrics.inc('http_requests_total', { status: '200', route: '/a' })
    const odd = 'x"y\\z\nw'
    metrics.inc('mqtt_refusals_total', { reason: odd })
    expect(metrics.get('http_requests_total', { status: '200', route: '/a' })).toBe(2)
    expect(metrics.total('http_requests_total')).toBe(2)
    const text = await metrics.render()
    expect(text).toContain('latchkey_mqtt_refusals_total{reason="x\\"y\\\\z\\nw"} 1')
    const m = parseExposition(text)
    expect(valueOf(m, 'latchkey_http_requests_total', { route: '/a', status: '200' })).toBe(2)
    expect(valueOf(m, 'latchkey_mqtt_refusals_total', { reason: odd })).toBe(1)
  })

  it('never throws: undeclared names are created, undeclared labels are counted as rejected', async () => {
    // Scenario: a call site added by another change uses a new counter, and one passes a label not declared.
    const metrics = new Metrics()
    metrics.inc('brand_new_total', { kind: 'a' })
    expect(() => metrics.inc('mqtt_refusals_total', { reason: 'r', extra: 'x' })).not.toThrow()
    expect(() => metrics.observe('command_round_trip_seconds', { nope: 'x' }, 1)).not.toThrow()
    expect(metrics.get('brand_new_total', { kind: 'a' })).toBe(1)
    expect(metrics.get('metrics_rejected_total', { metric: 'mqtt_refusals_total' })).toBe(1)
    expect(metrics.get('metrics_rejected_total', { metric: 'command_round_trip_seconds' })).toBe(1)
    const m = parseExposition(await metrics.render())
    expect(m.help.get('latchkey_brand_new_total')).toMatch(/\S/)
  })

  it('gives each instance its own registry and reads gauges at scrape time', async () => {
    // Scenario: two instances in one process, each with a gauge of the same name → no collision, each its value.
    let value = 1
    const a = new Metrics()
    const b = new Metrics()
    a.gauges({ devices_connected: () => value })
    b.gauges({ devices_connected: async () => 7 })
    a.inc('mqtt_messages_received_total')
    expect(valueOf(parseExposition(await a.render()), 'latchkey_devices_connected')).toBe(1)
    value = 3
    expect(valueOf(parseExposition(await a.render()), 'latchkey_devices_connected')).toBe(3)
    const other = parseExposition(await b.render())
    expect(valueOf(other, 'latchkey_devices_connected')).toBe(7)
    expect(valueOf(other, 'latchkey_mqtt_messages_received_total')).toBe(0)
  })
})
