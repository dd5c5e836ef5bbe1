import type { RawHttpResult } from '../cases/raw-http.js'
import type { RawMqttResult } from '../cases/raw-mqtt.js'
import type { PeerResult } from '../cases/peer.js'
import type { ScaleResult } from '../cases/scale.js'
import type { FanoutResult, Skipped } from '../cases/webhooks.js'
import type { Levels } from '../cases/end-to-end.js'
import type { LoopResult } from './loop.js'
import { round } from './stats.js'

/** The JSON a run writes, the targets of docs/performance.md checked against it, and the one table printed. */

export interface SerialCeiling {
  mqtt_ms: number
  http_ms: number
  webhook_ms: number
  sum_ms: number
  attempts_per_s: number
}

export interface Results {
  schema: 1
  mode: 'quick' | 'full'
  command: string
  started_at: string
  finished_at?: string
  duration_s?: number
  machine: Record<string, string | number>
  raw?: { mqtt: RawMqttResult; http: RawHttpResult; serial_ceiling: SerialCeiling }
  end_to_end?: {
    sync: Levels
    /** sync:true at 1 in flight (no webhook in the path) over the serial ceiling (which counts one webhook POST). */
    ratio_to_serial_ceiling: number | null
    create_to_webhook: Levels | Skipped
    /** create → webhook received at 1 in flight over the serial ceiling: the like-for-like composition. */
    create_to_webhook_ratio_to_serial_ceiling?: number | null
  }
  peer?: PeerResult
  fanout?: FanoutResult | Skipped
  scale?: ScaleResult
  targets?: Target[]
  errors?: Record<string, string>
  [key: string]: unknown
}

export interface Target {
  name: string
  target: string
  value: string
  /** null: not measured in this run (skipped, or a quick run's stand-in size). */
  met: boolean | null
}

export function serialCeiling(mqtt: RawMqttResult, http: RawHttpResult): SerialCeiling {
  const mqttMs = mqtt.serial.latency.mean_ms
  const httpMs = http.fastify.c1?.latency.mean_ms ?? 0
  const webhookMs = http.webhook.serial.latency.mean_ms
  const sum = mqttMs + httpMs + webhookMs
  return {
    mqtt_ms: mqttMs,
    http_ms: httpMs,
    webhook_ms: webhookMs,
    sum_ms: round(sum, 3),
    attempts_per_s: round(1000 / sum, 0),
  }
}

const isSkipped = (value: unknown): value is Skipped =>
  typeof value === 'object' && value !== null && 'skipped' in value

export function targets(r: Results): Target[] {
  const out: Target[] = []
  const e2e = r.end_to_end
  if (e2e) {
    const ratio = e2e.ratio_to_serial_ceiling
    out.push({
      name: 'end-to-end (1 in flight) / serial ceiling',
      target: '≥ 70 %',
      value: ratio === null ? '-' : `${round(ratio * 100, 0)} %`,
      met: ratio === null ? null : ratio >= 0.7,
    })
    const p99 = e2e.sync.c100?.latency.p99_ms
    out.push({
      name: 'p99 create→settled, 100 in flight',
      target: '≤ 10 ms',
      value: p99 === undefined ? '-' : `${p99} ms`,
      met: p99 === undefined ? null : p99 <= 10,
    })
  }
  if (r.scale) {
    const s = r.scale
    const full = s.requested >= 20_000
    // Clamped by the open-file limit and otherwise fine: not measurable here, so neither met nor failed.
    const clampedOnly = s.clamped_by !== undefined && s.complete && s.rss_mb <= 1536
    out.push({
      name: `${s.connected} connected locks, latchkey RSS`,
      target: '20,000 locks, ≤ 1.5 GB',
      value: `${s.complete ? '' : 'INCOMPLETE, '}${s.rss_mb} MB (${s.rss_per_lock_kb} KB/lock)${s.clamped_by ? `, clamped to ${s.locks} by the open-file limit` : ''}`,
      met: !full || clampedOnly ? null : s.complete && s.rss_mb <= 1536 && s.locks >= 20_000,
    })
  }
  if (r.fanout) {
    const f = r.fanout
    out.push(
      isSkipped(f)
        ? { name: 'webhook fan-out', target: '≥ 5,000 deliveries/s', value: f.skipped, met: null }
        : {
            name: 'webhook fan-out',
            target: '≥ 5,000 deliveries/s',
            value: `${f.deliveries_per_s}/s`,
            met: f.deliveries_per_s >= 5000,
          },
    )
  }
  if (r.peer) {
    out.push({
      name: 'lock_door req/s vs Seam fake',
      target: '≥ 2×',
      value: `${r.peer.ratio}×`,
      met: r.peer.ratio >= 2,
    })
  }
  return out
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 })
const lat = (l: LoopResult) =>
  `p50 ${fmt(l.latency.p50_ms)} · p95 ${fmt(l.latency.p95_ms)} · p99 ${fmt(l.latency.p99_ms)} ms`
const cpu = (l: LoopResult, label: string) =>
  l.cpu_pct[label] === undefined
    ? ''
    : ` · ${label} CPU ${l.cpu_pct[label]} % (sys ${l.cpu_sys_pct[label]} %), ${fmt(l.cpu_ms_per_op[label] ?? 0)} ms/req${l.disk_kb_per_op[label] ? `, ${fmt(l.disk_kb_per_op[label] ?? 0)} KiB disk/req` : ''}`
const rate = (l: LoopResult, unit = '/s') => `${fmt(l.per_s)}${unit}${l.errors ? ` (${l.errors} errors)` : ''}`

/** One markdown table: every case, its result and, where docs/performance.md sets one, the target and its verdict. */
export function table(r: Results): string {
  const rows: string[][] = []
  const t = r.targets ?? []
  const mark = (name: string) => {
    const target = t.find((x) => x.name.startsWith(name))
    return target ? [target.target, target.met === null ? 'n/a' : target.met ? 'met' : 'NOT met'] : ['', '']
  }
  if (r.raw) {
    const { mqtt, http, serial_ceiling: c } = r.raw
    rows.push(['1 raw: mqtt.js↔aedes QoS 1 round trip, serial', `${rate(mqtt.serial)} · ${lat(mqtt.serial)}`, '', ''])
    rows.push([`1 raw: same, ${mqtt.pipelined.concurrency} pipelined`, rate(mqtt.pipelined), '', ''])
    rows.push(['1 raw: same, PUBACK deferred one setImmediate', rate(mqtt.pipelined_deferred_puback), '', ''])
    for (const [key, l] of Object.entries(http.fastify))
      rows.push([`1 raw: fastify hello POST, ${key.slice(1)} in flight`, `${rate(l)} · ${lat(l)}`, '', ''])
    rows.push([
      '1 raw: signed webhook POST, serial',
      `${rate(http.webhook.serial)} · ${lat(http.webhook.serial)}`,
      '',
      '',
    ])
    rows.push(['1 raw: signed webhook POST, 100 in flight', rate(http.webhook.c100), '', ''])
    rows.push([
      '1 serial ceiling (mean mqtt + http + webhook)',
      `${fmt(c.sum_ms)} ms → ${fmt(c.attempts_per_s)} attempts/s`,
      '',
      '',
    ])
  }
  if (r.end_to_end) {
    for (const [key, l] of Object.entries(r.end_to_end.sync)) {
      rows.push([
        `2a lock/unlock sync:true, ${key.slice(1)} in flight`,
        `${rate(l)} · ${lat(l)}${cpu(l, 'latchkey')}`,
        ...(key === 'c100' ? mark('p99') : ['', '']),
      ])
    }
    const ratio = r.end_to_end.ratio_to_serial_ceiling
    rows.push([
      '2 end-to-end (1 in flight) / serial ceiling',
      ratio === null ? '-' : `${fmt(round(ratio * 100, 0))} %`,
      ...mark('end-to-end'),
    ])
    const w = r.end_to_end.create_to_webhook
    if (isSkipped(w)) rows.push(['2b create → webhook received', `skipped: ${w.skipped}`, '', ''])
    else {
      for (const [key, l] of Object.entries(w))
        rows.push([`2b create → webhook received, ${key.slice(1)} in flight`, `${rate(l)} · ${lat(l)}`, '', ''])
      const r2 = r.end_to_end.create_to_webhook_ratio_to_serial_ceiling
      if (r2 !== undefined && r2 !== null)
        rows.push(['2b create → webhook (1 in flight) / serial ceiling', `${fmt(round(r2 * 100, 0))} %`, '', ''])
    }
  }
  if (r.scale) {
    const s = r.scale
    const outcome = s.complete
      ? `all connected ${s.connected_s} s · all online ${s.online_s} s`
      : `INCOMPLETE: ${fmt(s.connected)} connected after ${s.time_limit_s} s`
    rows.push([
      `3 connection scale: ${fmt(s.locks)} locks${s.clamped_by ? ` (asked ${fmt(s.requested)})` : ''}`,
      `provisioned in ${s.provision_s} s · ${outcome} · RSS ${s.rss_mb} MB (peak ${s.peak_rss_mb})`,
      ...mark(`${s.connected} connected`),
    ])
  }
  if (r.fanout) {
    const f = r.fanout
    rows.push([
      '4 webhook fan-out',
      isSkipped(f)
        ? `skipped: ${f.skipped}`
        : `${fmt(f.deliveries_per_s)} deliveries/s to ${f.webhooks} webhooks (${f.mode}: ${fmt(f.deliveries)} verified in ${f.drain_s} s, ${f.bad_signatures} bad)`,
      ...mark('webhook fan-out'),
    ])
  }
  if (r.peer) {
    const p = r.peer
    rows.push([
      `5 POST /locks/lock_door, ${p.concurrency} conns: latchkey`,
      `${rate(p.latchkey)} · ${lat(p.latchkey)}${cpu(p.latchkey, 'latchkey')}`,
      '',
      '',
    ])
    rows.push([
      `5 POST /locks/lock_door, ${p.concurrency} conns: Seam fake`,
      `${rate(p.fake)} · ${lat(p.fake)}${cpu(p.fake, 'fake')}`,
      '',
      '',
    ])
    rows.push(['5 latchkey / Seam fake', `${fmt(p.ratio)}×`, ...mark('lock_door')])
  }
  for (const [name, message] of Object.entries(r.errors ?? {}))
    rows.push([`${name}`, `FAILED: ${message.slice(0, 120)}`, '', ''])
  const header = ['case', 'result', 'target', 'status']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}
