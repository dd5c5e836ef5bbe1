import { describe, expect } from 'vitest'
import { FakeClock } from '../helpers/fake-clock.js'
import { it } from '../helpers/latchkey.js'
import { queryTestDatabase } from '../helpers/store.js'

const DAY = 24 * 60 * 60 * 1000
const RETENTION = { days: 90, ms: 90 * DAY }

/** Retention inside a running latchkey, on either store (docs/operations.md#retention). */
describe('retention in latchkey', () => {
  it('runs inside latchkey on its clock, and not at all with RETENTION_DAYS=0', async ({ start }) => {
    // Scenario: a device added 91 days ago and one added now; two instances, one with retention off.
    const byDays = async (days: string) => {
      const clock = new FakeClock()
      const t = await start({ clock, env: { RETENTION_DAYS: days } })
      await t.call('/devices/create', { name: 'old' })
      clock.advance(RETENTION.ms + DAY)
      await t.call('/devices/create', { name: 'new' })
      // The first batch ran at start-up's time; the next one, a minute later, sees the old event past retention.
      clock.advance(60_000)
      // That batch is a job of the write queue, queued as the timer fired: a write queued after it commits after it.
      await t.call('/devices/create', { name: 'probe' })
      return t
    }
    const events = async (t: { dataDir: string }) => {
      const rows = await queryTestDatabase<{ n: number | string }>(
        t.dataDir,
        "SELECT count(*) AS n FROM events WHERE event_type = 'device.added'",
      )
      return Number(rows[0]?.n)
    }
    expect(await events(await byDays('90'))).toBe(2)
    expect(await events(await byDays('0'))).toBe(3)
  })
})
