/** A parsed Prometheus text exposition: families with their HELP and TYPE, and every sample with its labels. */
export interface Exposition {
  help: Map<string, string>
  type: Map<string, string>
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parseExposition(text: string): Exposition {
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] }
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
    if (meta) {
      ;(meta[1] === 'HELP' ? out.help : out.type).set(meta[2] as string, meta[3] as string)
      continue
    }
    const sample = SAMPLE.exec(line)
    if (!sample) throw new Error(`not a Prometheus line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, raw] of (sample[2] ?? '').matchAll(LABEL)) {
      labels[key as string] = (raw as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    }
    out.samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) })
  }
  return out
}

/** The samples of `name` whose labels include `labels` (exactly these keys when `exact`). */
export function samplesOf(
  e: Exposition,
  name: string,
  labels: Record<string, string> = {},
  exact = false,
): Array<{ labels: Record<string, string>; value: number }> {
  return e.samples.filter(
    (s) =>
      s.name === name &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
      (!exact || Object.keys(s.labels).length === Object.keys(labels).length),
  )
}

/** The value of the one sample of `name` with exactly these labels, or undefined. */
export function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return samplesOf(e, name, labels, true)[0]?.value
}

/** The family a sample belongs to: histogram and summary samples carry a suffix. */
export function familyOf(e: Exposition, sample: string): string | undefined {
  if (e.type.has(sample)) return sample
  const base = sample.replace(/_(bucket|sum|count|created)$/, '')
  return e.type.has(base) ? base : undefined
}

export async function scrape(httpUrl: string, token?: string): Promise<Exposition> {
  const res = await fetch(`${httpUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {})
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return parseExposition(await res.text())
}
