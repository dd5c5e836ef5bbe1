import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { countOnline, lockProcesses, provision } from './lib/fleet.js'
import { startLatchkeyChild } from './lib/latchkey-child.js'
import { memoryOf } from './lib/children.js'
import { pollUntil, sleep } from './lib/stats.js'

/**
 * Live heap per idle lock (docs/performance.md#idle-lock-memory): heap snapshots of a latchkey child with `first`,
 * then `second` idle locks connected and online; the difference of the self sizes summed per node type and name
 * (constructor), divided by the locks in between, largest first. A snapshot collects garbage first, so this is live
 * memory only, unlike RSS.
 *
 *   npx tsx bench/idle-heap.ts [first=1000] [second=3000] [snapshot dir=/tmp/latchkey-idle-heap]
 */
const first = Number(process.argv[2] ?? 1000)
const second = Number(process.argv[3] ?? 3000)
const dir = process.argv[4] ?? join(tmpdir(), 'latchkey-idle-heap')
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })

async function snapshot(pid: number, label: string): Promise<string> {
  const before = new Set(readdirSync(dir))
  process.kill(pid, 'SIGUSR2')
  const file = await pollUntil(
    async () => {
      const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'))
      if (fresh.length === 0) return undefined
      const path = join(dir, fresh[0] as string)
      const size = statSync(path).size
      await sleep(1000)
      return statSync(path).size === size && size > 0 ? path : undefined
    },
    300_000,
    500,
  )
  if (!file) throw new Error(`no snapshot for ${label}`)
  return file
}

interface Summary {
  total: number
  byKey: Map<string, { size: number; count: number }>
}

function summarize(path: string): Summary {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const byKey = new Map<string, { size: number; count: number }>()
  let total = 0
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType] as number] as string
    let name = snap.strings[snap.nodes[i + iName] as number] as string
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = ''
    if (type === 'closure') name = `closure ${name}`
    if (type === 'number' || (type === 'hidden' && name.length > 60)) name = name.slice(0, 60)
    const key = `${type}:${name.slice(0, 80)}`
    const size = snap.nodes[i + iSize] as number
    total += size
    const entry = byKey.get(key) ?? { size: 0, count: 0 }
    entry.size += size
    entry.count += 1
    byKey.set(key, entry)
  }
  return { total, byKey }
}

const lk = await startLatchkeyChild({
  nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
  startTimeoutMs: 120_000,
})
try {
  const creds = (await provision(lk, second, 64)).credentials
  const a = await lockProcesses(creds.slice(0, first), lk.mqttUrl, 10_000)
  const b = await lockProcesses(creds.slice(first), lk.mqttUrl, 10_000)
  try {
    await a.start()
    await pollUntil(async () => ((await countOnline(lk)) >= first ? true : undefined), 300_000, 500)
    await sleep(5000)
    const rss1 = memoryOf(lk.pid).rss_mb
    const s1 = await snapshot(lk.pid, 'first')
    await b.start()
    await pollUntil(async () => ((await countOnline(lk)) >= second ? true : undefined), 300_000, 500)
    await sleep(5000)
    const rss2 = memoryOf(lk.pid).rss_mb
    const s2 = await snapshot(lk.pid, 'second')
    const x = summarize(s1)
    const y = summarize(s2)
    const n = second - first
    console.log(
      `live heap: ${(x.total / 1048576).toFixed(1)} MB at ${first}, ${(y.total / 1048576).toFixed(1)} MB at ${second}: ` +
        `${((y.total - x.total) / n / 1024).toFixed(2)} KiB per lock; RSS ${rss1} -> ${rss2} MB`,
    )
    const rows: Array<[string, number, number]> = []
    for (const [key, v] of y.byKey) {
      const u = x.byKey.get(key) ?? { size: 0, count: 0 }
      rows.push([key, (v.size - u.size) / n, (v.count - u.count) / n])
    }
    rows.sort((p, q) => q[1] - p[1])
    for (const [key, bytes, count] of rows.slice(0, 45)) {
      console.log(`${bytes.toFixed(0).padStart(6)} B  ${count.toFixed(2).padStart(6)}  ${key}`)
    }
  } finally {
    await lk.stop()
    await a.kill()
    await b.kill()
  }
} finally {
  await lk.stop()
}
