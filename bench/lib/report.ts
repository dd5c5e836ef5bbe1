import type { ClusterResult } from '../cases/cluster.js'
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
  raw?: {
    mqtt: RawMqttResult
    http: RawHttpResult
    serial_ceiling: SerialCeiling
    concurrent_ceiling: ConcurrentCeiling
  }
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
  cluster?: ClusterResult | Skipped
  targets?: Target[]
  errors?: Record<string, string>
  [key: string]: unknown
}

/** 1 / (1/mqtt_pipelined + 1/http_c100 + 1/webhook_c100): the parts' best rates when overlapped, combined. */
export interface ConcurrentCeiling {
  mqtt_per_s: number
  http_per_s: number
  webhook_per_s: number
  attempts_per_s: number
}

/**
 * One target of docs/performance.md, against its value measured in the same run. `ratio` is value / target:
 * met at ≥ 1 for a floor (`at_least`), at ≤ 1 for a ceiling (`at_most`).
 */
export interface Target {
  name: string
  target: number
  value: number | null
  /** null: not measured in this run (skipped, or a quick run's stand-in size). */
  met: boolean | null
  unit: string
  kind: 'at_least' | 'at_most'
  ratio: number | null
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

export function concurrentCeiling(mqtt: RawMqttResult, http: RawHttpResult): ConcurrentCeiling {
  const mqttRate = mqtt.pipelined.per_s
  const httpRate = http.fastify.c100?.per_s ?? 0
  const webhookRate = http.webhook.c100.per_s
  const combined =
    mqttRate > 0 && httpRate > 0 && webhookRate > 0 ? 1 / (1 / mqttRate + 1 / httpRate + 1 / webhookRate) : 0
  return { mqtt_per_s: mqttRate, http_per_s: httpRate, webhook_per_s: webhookRate, attempts_per_s: round(combined, 0) }
}

const isSkipped = (value: unknown): value is Skipped =>
  typeof value === 'object' && value !== null && 'skipped' in value

function target(
  name: string,
  kind: Target['kind'],
  goal: number,
  unit: string,
  value: number | null | undefined,
  measurable = true,
): Target {
  const v = value === undefined || value === null || !Number.isFinite(value) ? null : round(value, 3)
  return {
    name,
    target: goal,
    value: v,
    met: v === null || !measurable ? null : kind === 'at_least' ? v >= goal : v <= goal,
    unit,
    kind,
    ratio: v === null ? null : round(v / goal, 3),
  }
}

/** The targets of docs/performance.md (#the-targets), each against its value in this run. */
export function targets(r: Results): Target[] {
  const out: Target[] = []
  const e2e = r.end_to_end
  const sync = e2e?.sync
  out.push(
    target(
      'end-to-end sync:true, 1 in flight / serial ceiling',
      'at_least',
      0.8,
      'ratio',
      e2e?.ratio_to_serial_ceiling,
    ),
  )
  const concurrent = r.raw?.concurrent_ceiling.attempts_per_s
  const c100 = sync?.c100?.per_s
  out.push(
    target(
      'attempts/s, 100 in flight / concurrent ceiling',
      'at_least',
      0.65,
      'ratio',
      concurrent && c100 !== undefined ? c100 / concurrent : null,
    ),
  )
  out.push(target('latchkey CPU per attempt, 100 in flight', 'at_most', 0.35, 'ms', sync?.c100?.cpu_ms_per_op.latchkey))
  out.push(
    target('storage written per attempt, 100 in flight', 'at_most', 16, 'KiB', sync?.c100?.disk_kb_per_op.latchkey),
  )
  out.push(target('storage written per attempt, 1 in flight', 'at_most', 24, 'KiB', sync?.c1?.disk_kb_per_op.latchkey))
  for (const level of ['c1', 'c10', 'c100']) {
    const l = sync?.[level]?.latency
    out.push(
      target(
        `tail p99 / p50, ${level.slice(1)} in flight`,
        'at_most',
        3,
        'ratio',
        l && l.p50_ms > 0 ? l.p99_ms / l.p50_ms : null,
      ),
    )
  }
  const f = r.fanout
  out.push(
    target(
      'signed webhook fan-out to 10 webhooks',
      'at_least',
      10_000,
      'deliveries/s',
      f && !isSkipped(f) ? f.deliveries_per_s : null,
    ),
  )
  const s = r.scale
  // A quick run's few hundred locks say little about 20,000: reported, neither met nor failed.
  out.push(
    target(
      'RSS per connected idle lock',
      'at_most',
      10,
      'KiB',
      s?.complete ? s.rss_per_lock_kb : null,
      (s?.requested ?? 0) >= 20_000,
    ),
  )
  out.push(target('lock_door sync:false vs Seam fake, 100 conns', 'at_least', 5, '×', r.peer?.ratio_async))
  out.push(target('lock_door sync:true vs Seam fake, 100 conns', 'at_least', 2.5, '×', r.peer?.ratio_sync))
  // A run of both stores (--store both): PostgreSQL end to end against SQLite's, in the same run.
  if (r.postgres) {
    const pg = (r.postgres as Pick<Results, 'end_to_end'>).end_to_end?.sync?.c10?.per_s
    const sqlite = sync?.c10?.per_s
    out.push(
      target(
        'PostgreSQL / SQLite attempts/s at 10 in flight',
        'at_least',
        0.6,
        'ratio',
        pg !== undefined && sqlite ? pg / sqlite : null,
      ),
    )
  }
  return out
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 })
const lat = (l: LoopResult) =>
  `p50 ${fmt(l.latency.p50_ms)} · p95 ${fmt(l.latency.p95_ms)} · p99 ${fmt(l.latency.p99_ms)} ms`
const cpu = (l: LoopResult, label: string) =>
  l.cpu_pct[label] === undefined
    ? ''
    : ` · ${label} CPU ${l.cpu_pct[label]} % (sys ${l.cpu_sys_pct[label]} %), ${fmt(l.cpu_ms_per_op[label] ?? 0)} ms/req${l.disk_kb_per_op[label] !== undefined ? `, ${fmt(l.disk_kb_per_op[label] ?? 0)} KiB disk/req` : ''}`
/** The young-generation collections (`minor`) of a level, when it measured them. */
const gc = (l: LoopResult) =>
  l.gc?.minor
    ? ` · GC ${fmt(l.gc.minor.per_1000_ops)} minor per 1,000 req, ${fmt(l.gc.minor.us_per_op + (l.gc.major?.us_per_op ?? 0))} µs/req`
    : ''
const rate = (l: LoopResult, unit = '/s') => `${fmt(l.per_s)}${unit}${l.errors ? ` (${l.errors} errors)` : ''}`

/** One markdown table: every case, its result and, where docs/performance.md sets one, the target and its verdict. */
export function table(r: Results): string {
  const rows: string[][] = []
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
    const cc = r.raw.concurrent_ceiling
    rows.push([
      '1 concurrent ceiling 1/(1/mqtt pipelined + 1/http c100 + 1/webhook c100)',
      `${fmt(cc.attempts_per_s)} attempts/s (${fmt(cc.mqtt_per_s)}, ${fmt(cc.http_per_s)}, ${fmt(cc.webhook_per_s)}/s)`,
      '',
      '',
    ])
  }
  if (r.end_to_end) {
    for (const [key, l] of Object.entries(r.end_to_end.sync)) {
      rows.push([
        `2a lock/unlock sync:true, ${key.slice(1)} in flight`,
        `${rate(l)} · ${lat(l)}${cpu(l, 'latchkey')}${gc(l)}`,
        '',
        '',
      ])
    }
    const ratio = r.end_to_end.ratio_to_serial_ceiling
    rows.push([
      '2 end-to-end (1 in flight) / serial ceiling',
      ratio === null ? '-' : `${fmt(round(ratio * 100, 0))} %`,
      '',
      '',
    ])
    const w = r.end_to_end.create_to_webhook
    if (isSkipped(w)) rows.push(['2b create → webhook received', `skipped: ${w.skipped}`, '', ''])
    else {
      for (const [key, l] of Object.entries(w))
        rows.push([
          `2b create → webhook received, ${key.slice(1)} in flight`,
          `${rate(l)} · ${lat(l)}${cpu(l, 'latchkey')}`,
          '',
          '',
        ])
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
      `provisioned in ${s.provision_s} s · ${outcome} · RSS idle ${s.rss_mb} MB (before the locks ${s.rss_before_mb}, peak ${s.peak_rss_mb}), ${s.rss_per_lock_kb} KiB/lock (${s.rss_per_lock_at_online_kb} KiB at the moment all were online)`,
      '',
      '',
    ])
  }
  if (r.fanout) {
    const f = r.fanout
    rows.push([
      '4 webhook fan-out',
      isSkipped(f)
        ? `skipped: ${f.skipped}`
        : `${fmt(f.deliveries_per_s)} deliveries/s to ${f.webhooks} webhooks (${f.mode}: ${fmt(f.deliveries)} verified in ${f.drain_s} s, ${f.bad_signatures} bad) · CPU per delivery: latchkey ${f.cpu_ms_per_delivery.latchkey} ms, receiver ${f.cpu_ms_per_delivery.receiver} ms`,
      '',
      '',
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
      `5 POST /locks/lock_door sync:false, ${p.concurrency} conns: latchkey`,
      `${rate(p.latchkey_async)} · ${lat(p.latchkey_async)}${cpu(p.latchkey_async, 'latchkey')}`,
      '',
      '',
    ])
    rows.push([
      `5 POST /locks/lock_door, ${p.concurrency} conns: Seam fake`,
      `${rate(p.fake)} · ${lat(p.fake)}${cpu(p.fake, 'fake')}`,
      '',
      '',
    ])
    rows.push(['5 latchkey / Seam fake (default, sync:false)', `${fmt(p.ratio_sync)}×, ${fmt(p.ratio_async)}×`, '', ''])
  }
  if (r.cluster) rows.push(...clusterRows(r.cluster))
  for (const t of r.targets ?? []) {
    const sign = t.kind === 'at_least' ? '≥' : '≤'
    const shown = (v: number) =>
      t.unit === 'ratio' && t.target < 1 ? `${fmt(round(v * 100, 1))} %` : `${fmt(v)} ${t.unit}`
    rows.push([
      `target: ${t.name}`,
      t.value === null ? '-' : `${shown(t.value)} = ${fmt(t.ratio ?? 0)} × the target`,
      `${sign} ${shown(t.target)}`,
      t.met === null ? 'n/a' : t.met ? 'met' : 'NOT met',
    ])
  }
  for (const [name, message] of Object.entries(r.errors ?? {}))
    rows.push([`${name}`, `FAILED: ${message.slice(0, 120)}`, '', ''])
  const header = ['case', 'result', 'target', 'status']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

/** Case 6: per level, the embedded figure, one instance and two instances of the scale-out topology. */
function clusterRows(c: ClusterResult | Skipped): string[][] {
  if (isSkipped(c)) return [['6 two instances on PostgreSQL + mosquitto', `skipped: ${c.skipped}`, '', '']]
  const rows: string[][] = []
  const perOp = (l: LoopResult, labels: string[]) =>
    labels
      .filter((label) => l.cpu_ms_per_op[label] !== undefined)
      .map((label) => `${label} ${fmt(l.cpu_ms_per_op[label] ?? 0)}`)
      .join(', ')
  for (const key of Object.keys(c.two_instances)) {
    const n = key.slice(1)
    const embedded = c.embedded.sync[key]
    if (embedded)
      rows.push([
        `6 embedded (${c.embedded.store}, aedes), sync:true, ${n} in flight`,
        `${rate(embedded)} · ${lat(embedded)}${cpu(embedded, 'latchkey')}`,
        '',
        '',
      ])
    const ratio = c.ratio_to_embedded[key]
    for (const [name, l, share] of [
      ['embedded broker, PostgreSQL', c.embedded_postgres[key], ratio?.embedded_postgres],
      ['1 instance, PostgreSQL + mosquitto', c.one_instance[key], ratio?.one_instance],
      ['2 instances, PostgreSQL + mosquitto', c.two_instances[key], ratio?.two_instances],
    ] as const) {
      if (!l) continue
      rows.push([
        `6 ${name}, sync:true, ${n} in flight`,
        `${rate(l)} · ${lat(l)} · ${share === null || share === undefined ? '-' : `${fmt(round(share * 100, 0))} %`} of embedded · CPU ms/req: ${perOp(l, ['latchkey', 'a', 'b', 'mosquitto', 'postgres'])}`,
        '',
        '',
      ])
    }
  }
  return rows
}
