import { describe, expect, it } from 'vitest'
import { targets, type Results } from '../../bench/lib/report.js'

const run = (perS: Record<string, number>, postgresPerS?: number): Results => {
  const levels = (n: number) => ({ c10: { per_s: n } }) as unknown as NonNullable<Results['end_to_end']>['sync']
  return {
    schema: 1,
    mode: 'quick',
    command: 'npm run bench -- --store both',
    started_at: '2026-11-26T00:00:00.000Z',
    machine: {},
    end_to_end: {
      sync: levels(perS.c10 ?? 0),
      ratio_to_serial_ceiling: null,
      create_to_webhook: { skipped: 'not run' },
    },
    ...(postgresPerS === undefined ? {} : { postgres: { end_to_end: { sync: levels(postgresPerS) } } }),
  }
}

describe('the bench targets of a run of both stores', () => {
  it('checks PostgreSQL at 10 in flight against 60 % of SQLite in the same run, and only when both ran', () => {
    // Scenario: SQLite 1,000 attempts/s, PostgreSQL 650 → met at 0.65; PostgreSQL 500 → not met at 0.5; a run of
    // SQLite alone has no such target.
    const name = 'PostgreSQL / SQLite attempts/s at 10 in flight'
    expect(targets(run({ c10: 1000 }, 650)).find((t) => t.name === name)).toMatchObject({
      value: 0.65,
      target: 0.6,
      met: true,
    })
    expect(targets(run({ c10: 1000 }, 500)).find((t) => t.name === name)).toMatchObject({ value: 0.5, met: false })
    expect(targets(run({ c10: 1000 })).find((t) => t.name === name)).toBeUndefined()
  })
})
