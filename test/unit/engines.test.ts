import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

/**
 * `npm ci` warns EBADENGINE when a locked package wants a newer Node than the one latchkey declares. This reads the
 * lockfile and checks every package's `engines.node` against the lowest Node of package.json's `engines`.
 */

type Version = [number, number, number]

function parse(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text
    .replace(/^v/, '')
    .split('.')
    .map((part) => (/^\d+$/.test(part) ? Number(part) : 0))
  return [major, minor, patch]
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}

/** Whether `version` satisfies one comparator (`>=20`, `^18.17.0`, `~20.1`, `<23`, `20.x`, `*`). */
function satisfiesOne(version: Version, comparator: string): boolean {
  const match = /^(>=|<=|>|<|\^|~|=)?\s*v?([\dx*.]+)$/.exec(comparator)
  if (!match) return true // unknown syntax: not this check's business
  const [, op = '=', raw = '*'] = match
  if (raw === '*' || raw === 'x') return true
  const parts = raw.split('.')
  const bound = parse(raw)
  const c = compare(version, bound)
  switch (op) {
    case '>=':
      return c >= 0
    case '>':
      return c > 0
    case '<=':
      return c <= 0
    case '<':
      return c < 0
    case '^':
      return c >= 0 && version[0] === bound[0]
    case '~':
      return c >= 0 && version[0] === bound[0] && version[1] === bound[1]
    default: {
      const fixed = parts.filter((p) => /^\d+$/.test(p)).length
      return version.slice(0, fixed).every((n, i) => n === bound[i])
    }
  }
}

function satisfies(version: Version, range: string): boolean {
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/(>=|<=|>|<|\^|~|=)\s+/g, '$1')
      .split(/\s+/)
      .filter(Boolean)
      .every((comparator) => satisfiesOne(version, comparator)),
  )
}

describe('engines', () => {
  it('locks only packages that run on the lowest Node latchkey declares', () => {
    // Scenario: package.json says node >=20.11 → no locked package may want more (cookie@2 wanted >=22).
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }
    const floor = parse(/>=\s*([\d.]+)/.exec(pkg.engines.node)?.[1] ?? '0')
    expect(floor[0]).toBeGreaterThanOrEqual(20)
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
      packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>
    }
    const wanting = Object.entries(lock.packages)
      .filter(([path, entry]) => {
        const node = !Array.isArray(entry.engines) ? entry.engines?.node : undefined
        return path !== '' && !entry.optional && node !== undefined && !satisfies(floor, node)
      })
      .map(([path, entry]) => `${path} wants node ${(entry.engines as { node: string }).node}`)
    expect(wanting).toEqual([])
  })

  it('reads the range forms found in lockfiles', () => {
    // Scenario: the comparator forms npm packages use, on Node 20.11.0.
    const v: Version = [20, 11, 0]
    for (const yes of ['>=18', '>= 20.11', '^20.0.0 || >=22', '>=14.17 <21', '20.x', '*', '~20.11.0', '>=16.0.0'])
      expect(satisfies(v, yes), yes).toBe(true)
    for (const no of ['>=22', '^18.17.0 || >=21', '<20', '~20.10.0', '>=20.12'])
      expect(satisfies(v, no), no).toBe(false)
  })
})
