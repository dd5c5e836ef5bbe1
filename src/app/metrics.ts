/** Counters of what was dropped, refused or done; served as Prometheus text at /metrics. */
export class Metrics {
  private readonly counters = new Map<string, number>()

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = metricKey(name, labels)
    this.counters.set(key, (this.counters.get(key) ?? 0) + by)
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.counters.get(metricKey(name, labels)) ?? 0
  }

  /** Sum over every label set of a counter. */
  total(name: string): number {
    let sum = 0
    for (const [key, value] of this.counters) if (key === name || key.startsWith(`${name}{`)) sum += value
    return sum
  }

  toPrometheus(gauges: Record<string, number> = {}): string {
    const lines: string[] = []
    let family = ''
    for (const [key, value] of [...this.counters].sort()) {
      const name = key.split('{')[0] as string
      if (name !== family) lines.push(`# TYPE latchkey_${(family = name)} counter`)
      lines.push(`latchkey_${key} ${value}`)
    }
    for (const [name, value] of Object.entries(gauges))
      lines.push(`# TYPE latchkey_${name} gauge`, `latchkey_${name} ${value}`)
    return `${lines.join('\n')}\n`
  }
}

function metricKey(name: string, labels: Record<string, string>): string {
  const entries = Object.entries(labels)
  if (entries.length === 0) return name
  return `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}`
}
