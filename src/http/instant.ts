import { z } from 'zod'

const RFC3339 = z.iso.datetime({ offset: true })
const DAY = z.iso.date()

const MIN_MS = Date.parse('0000-01-01T00:00:00.000Z')
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z')

/**
 * An instant as RFC 3339 (any offset) or YYYY-MM-DD (midnight UTC), normalised to the UTC ISO form times are stored
 * with, so that the store compares instants, not text. An offset that carries it past 9999-12-31 or before
 * 0000-01-01 UTC (`9999-12-31T23:59:59-23:59`) is clamped to that bound: no stored time is outside it, and the
 * ISO form of such an instant (`+010000-…`) would not sort as a time.
 */
export const Instant = z
  .string()
  .refine((value) => RFC3339.safeParse(value).success || DAY.safeParse(value).success, {
    message: 'invalid format, expected RFC3339 or YYYY-MM-DD',
  })
  .transform((value) => toIsoInstant(value))

export function toIsoInstant(value: string): string {
  const ms = Date.parse(value)
  return new Date(Math.min(Math.max(ms, MIN_MS), MAX_MS)).toISOString()
}
