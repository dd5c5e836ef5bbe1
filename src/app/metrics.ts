import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { AttemptRecord } from '../domain/attempt.js'
import type { DeliveryStatus } from '../domain/webhook-delivery.js'
import type { RecordedAttempt } from './store.js'

/**
 * latchkey's Prometheus metrics (docs/operations.md), on prom-client: one registry per started latchkey, so that
 * several in one process (the tests) never collide, plus one process-wide registry for Node's default metrics.
 * Call sites name a metric without the `latchkey_` prefix: `metrics.inc('mqtt_refusals_total', { reason })`.
 */

const PREFIX = 'latchkey_'

interface Spec {
  help: string
  labels: readonly string[]
}

/** Every counter, declared with its HELP text and label names. */
const COUNTERS = {
  http_requests_total: {
    help: 'HTTP requests answered, by route pattern and status code.',
    labels: ['route', 'status'],
  },
  http_rate_limited_total: {
    help: 'HTTP requests refused as rate limited, by scope (api_key or client_address).',
    labels: ['scope'],
  },
  mqtt_messages_received_total: { help: 'Device messages received by the orchestrator.', labels: [] },
  attempt_wakes_total: {
    help: 'Waiting requests answered because another instance settled their attempt, by how it was noticed.',
    labels: ['by'],
  },
  attempt_deadlines_swept_total: {
    help: 'Pending attempts past their deadline that this instance settled by its sweep of the shared database.',
    labels: [],
  },
  webhook_delivery_claims_total: {
    help: 'Delivery leases asked for on a shared database, by result: taken, refused (held elsewhere or not due), polled.',
    labels: ['result'],
  },
  mqtt_retained_read_total: {
    help: 'Retained device status and state messages read at connect by an instance on a shared external broker.',
    labels: [],
  },
  mqtt_messages_dropped_total: {
    help: 'Device messages the orchestrator dropped (malformed, oversize, unknown device or command), by reason.',
    labels: ['reason'],
  },
  mqtt_refusals_total: {
    help: 'Connections, publishes and subscriptions refused by the embedded broker or the /mqtt-auth callbacks, by reason.',
    labels: ['reason'],
  },
  mqtt_auth_callbacks_total: {
    help: 'Broker callbacks answered under /mqtt-auth (MQTT_DEVICE_AUTH=http), by broker, hook and result.',
    labels: ['broker', 'hook', 'result'],
  },
  mqtt_auth_secret_refused_total: {
    help: 'Broker callbacks refused with 401 for a missing or wrong MQTT_AUTH_SECRET.',
    labels: [],
  },
  acks_ignored_total: { help: 'Device acks that changed nothing (duplicate or late), by kind.', labels: ['kind'] },
  action_attempts_total: {
    help: 'Action attempts settled, by action type and status; error_type is set on error series only.',
    labels: ['action_type', 'status', 'error_type'],
  },
  webhook_attempts_total: {
    help: 'Webhook HTTP attempts recorded, by status (success or failed).',
    labels: ['status'],
  },
  webhook_deliveries_total: {
    help: 'Webhook deliveries (one event to one webhook) that reached a final status: delivered, failed or cancelled.',
    labels: ['status'],
  },
  webhooks_disabled_total: { help: 'Webhooks disabled automatically, by reason.', labels: ['reason'] },
  metrics_rejected_total: {
    help: 'Metric updates refused because their labels did not match the declared ones, by metric.',
    labels: ['metric'],
  },
} satisfies Record<string, Spec>

/** Attempt and HTTP latencies: from a millisecond to the longest default deadline and webhook timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

const HISTOGRAMS = {
  action_attempt_duration_seconds: {
    help: 'Action attempts from creation to settlement, by action type and final status.',
    labels: ['action_type', 'status'],
  },
  command_round_trip_seconds: {
    help: "From a command's sent_at (the broker's PUBACK) to the device's first ack, as on the attempt's timeline.",
    labels: [],
  },
  webhook_delivery_duration_seconds: {
    help: 'Duration of each webhook HTTP attempt, by outcome: success (2xx), http_error (other status), no_response.',
    labels: ['outcome'],
  },
} satisfies Record<string, Spec>

/** Gauges, read at scrape time from the sources given to `Metrics.gauges`. */
const GAUGES = {
  devices_connected: 'Devices whose last status message was `online`.',
  mqtt_connected_clients:
    'Clients connected to the embedded broker, the orchestrator included (0 with an external one).',
  action_attempts_pending: 'Action attempts of this process waiting for their device or their deadline.',
  webhook_deliveries_queued: "Webhook deliveries in this process's queue (due or waiting for their retry time).",
  webhook_deliveries_in_flight: 'Webhook HTTP attempts in progress.',
  webhook_deliveries_held: 'Pending webhook deliveries held because their webhook is disabled.',
  webhook_oldest_owed_delivery_age_seconds:
    'Age of the oldest webhook delivery still owed to an enabled webhook (0 when none is owed).',
} satisfies Record<string, string>

export type GaugeName = keyof typeof GAUGES
export type GaugeSources = Partial<Record<GaugeName, () => number | Promise<number>>>

type Labels = Record<string, string>

interface CounterEntry {
  counter: Counter
  labels: readonly string[]
  /** Synchronous reads for tests: the value per label-value key. */
  values: Map<string, number>
}

let processRegistry: Registry | undefined

/** Node's default process metrics, once per process: they describe the process, not one latchkey in it. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export class Metrics {
  readonly registry = new Registry()
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE
  private readonly counters = new Map<string, CounterEntry>()
  private readonly histograms = new Map<string, Histogram>()

  constructor() {
    for (const [name, spec] of Object.entries(COUNTERS)) this.counter(name, spec)
    for (const [name, spec] of Object.entries(HISTOGRAMS)) {
      const histogram = new Histogram({
        name: PREFIX + name,
        help: spec.help,
        labelNames: spec.labels,
        buckets: LATENCY_BUCKETS,
        registers: [this.registry],
      })
      this.histograms.set(name, histogram)
    }
  }

  /**
   * Adds to a counter. A name not declared above is created on first use (labels from that call), so that a new
   * call site never fails; declare it above to give it a real HELP text. Never throws.
   */
  inc(name: string, labels: Labels = {}, by = 1): void {
    const entry =
      this.counters.get(name) ?? this.counter(name, { help: `latchkey ${name}.`, labels: Object.keys(labels) })
    try {
      entry.counter.inc(labels, by)
    } catch {
      // Labels outside the declared set: counted nowhere rather than crash the caller.
      this.inc('metrics_rejected_total', { metric: name })
      return
    }
    const key = valueKey(entry.labels, labels)
    entry.values.set(key, (entry.values.get(key) ?? 0) + by)
  }

  /** One histogram observation, in seconds. Never throws. */
  observe(name: string, labels: Labels, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return
    try {
      this.histograms.get(name)?.observe(labels, seconds)
    } catch {
      this.inc('metrics_rejected_total', { metric: name })
    }
  }

  /** A counter's value for exactly these labels (synchronous, for tests). */
  get(name: string, labels: Labels = {}): number {
    const entry = this.counters.get(name)
    return entry?.values.get(valueKey(entry.labels, labels)) ?? 0
  }

  /** Sum over every label set of a counter. */
  total(name: string): number {
    let sum = 0
    for (const value of this.counters.get(name)?.values.values() ?? []) sum += value
    return sum
  }

  /** Registers the gauges' sources; each is read when /metrics is scraped. A source that fails keeps the last value. */
  gauges(sources: GaugeSources): void {
    for (const [name, read] of Object.entries(sources) as Array<[GaugeName, () => number | Promise<number>]>) {
      new Gauge({
        name: PREFIX + name,
        help: GAUGES[name],
        registers: [this.registry],
        async collect() {
          try {
            this.set(await read())
          } catch {
            // Keep the last value: a scrape must not fail because one source did.
          }
        },
      })
    }
  }

  /** The Prometheus text exposition: this latchkey's metrics, then the process's. */
  async render(): Promise<string> {
    const [own, node] = await Promise.all([this.registry.metrics(), processMetrics().metrics()])
    return `${own}\n${node}`
  }

  private counter(name: string, spec: Spec): CounterEntry {
    const entry: CounterEntry = {
      counter: new Counter({
        name: PREFIX + name,
        help: spec.help,
        labelNames: spec.labels,
        registers: [this.registry],
      }),
      labels: spec.labels,
      values: new Map(),
    }
    this.counters.set(name, entry)
    return entry
  }
}

function valueKey(names: readonly string[], labels: Labels): string {
  if (names.length === 0) return ''
  if (names.length === 1) return labels[names[0] as string] ?? ''
  return names.map((name) => labels[name] ?? '').join('\u0000')
}

/** Errors that settle an attempt without any word from the device. */
const NOT_FROM_DEVICE = new Set(['device_offline', 'action_attempt_expired', 'device_removed'])

/** A settled attempt: its duration, its count by outcome, and the command round trip of its timeline. */
export function recordSettledAttempt(metrics: Metrics, attempt: AttemptRecord): void {
  const createdMs = Date.parse(attempt.created_at)
  const settledMs = Date.parse(attempt.completed_at ?? attempt.updated_at)
  const { action_type, status } = attempt
  metrics.observe('action_attempt_duration_seconds', { action_type, status }, (settledMs - createdMs) / 1000)
  const errorType = attempt.error?.type
  metrics.inc(
    'action_attempts_total',
    errorType === undefined ? { action_type, status } : { action_type, status, error_type: errorType },
  )
  const fromDevice = errorType === undefined || !NOT_FROM_DEVICE.has(errorType)
  const firstAck = attempt.accepted_at ?? (fromDevice ? attempt.completed_at : null)
  if (attempt.sent_at !== null && firstAck !== null) {
    metrics.observe('command_round_trip_seconds', {}, (Date.parse(firstAck) - Date.parse(attempt.sent_at)) / 1000)
  }
}

/** A recorded webhook HTTP attempt; `before` is the delivery's status before it, to count each final status once. */
export function recordDeliveryAttempt(metrics: Metrics, recorded: RecordedAttempt, before: DeliveryStatus): void {
  const { attempt, decision } = recorded
  metrics.inc('webhook_attempts_total', { status: attempt.status })
  const outcome =
    attempt.status === 'success' ? 'success' : attempt.response_code === null ? 'no_response' : 'http_error'
  metrics.observe('webhook_delivery_duration_seconds', { outcome }, attempt.duration_ms / 1000)
  if (before === 'pending' && decision.delivery !== 'pending') {
    metrics.inc('webhook_deliveries_total', { status: decision.delivery })
  }
}
