import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { round } from './stats.js'

/** Top self-time functions of a V8 `.cpuprofile` (as written by `node --cpu-prof`). */

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotFunction {
  function: string
  where: string
  self_ms: number
  /** Share of the busy (non-idle) time. */
  self_pct: number
}

export interface ProfileSummary {
  file: string
  busy_ms: number
  idle_ms: number
  top: HotFunction[]
}

export function summarizeProfile(file: string, topN = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<string, { fn: string; where: string; us: number }>()
  let idleUs = 0
  let busyUs = 0
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    const frame = byId.get(id)?.callFrame
    if (!frame) return
    if (frame.functionName === '(idle)') {
      idleUs += us
      return
    }
    busyUs += us
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''
    const fn = frame.functionName || '(anonymous)'
    const key = `${fn}@${where}`
    const entry = selfUs.get(key) ?? { fn, where, us: 0 }
    entry.us += us
    selfUs.set(key, entry)
  })
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => ({
      function: e.fn,
      where: e.where,
      self_ms: round(e.us / 1000, 1),
      self_pct: round((100 * e.us) / Math.max(1, busyUs), 1),
    }))
  return { file, busy_ms: round(busyUs / 1000, 0), idle_ms: round(idleUs / 1000, 0), top }
}

/** node_modules/<pkg>/… or the path inside the repository. */
function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '')
  const nm = path.lastIndexOf('node_modules/')
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length)
  const repo = path.search(/\/(src|broker|devices|simulator|bench)\//)
  return repo >= 0 ? path.slice(repo + 1) : path
}

/** The newest main-thread profile: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile with thread 0 (tsx's loader is 1). */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort()
  const last = files.at(-1)
  return last ? join(dir, last) : undefined
}
