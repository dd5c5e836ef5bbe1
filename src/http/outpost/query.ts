import { z } from 'zod'
import type { AttemptListInput } from '../../app/delivery-log.js'
import type { TimeRange } from '../../domain/delivery-log.js'
import { Instant } from '../instant.js'

/**
 * The Outpost dialect's query strings (docs/deliveries.md), validated by zod (which also documents them in /openapi.json)
 * and then folded into one list input: repeated and comma-separated values, `time[op]` brackets, and the older
 * spellings (`time_gte`, `time_lte`, `next_cursor`, `prev_cursor`, `direction`) that older clients still send.
 */

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000

/** `a`, `a,b` or `?k=a&k=b`: a list without empty parts, or undefined when nothing is left. */
const List = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((value) => {
    const parts = (Array.isArray(value) ? value : value === undefined ? [] : [value])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
    const kept = parts.filter((v) => v !== '')
    return kept.length > 0 ? kept : undefined
  })

const Dir = z.enum(['asc', 'desc'])

export const Include = { include: List.describe('event, event.data, response_data; repeatable or comma-separated') }

export const PageQuery = z.object({
  event_id: List,
  topic: List.describe('event types'),
  status: z.enum(['success', 'failed']).optional(),
  'time[gte]': Instant.optional(),
  'time[lte]': Instant.optional(),
  'time[gt]': Instant.optional(),
  'time[lt]': Instant.optional(),
  time_gte: Instant.optional().describe('older spelling of time[gte]'),
  time_lte: Instant.optional().describe('older spelling of time[lte]'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe(`default ${DEFAULT_LIMIT}; larger than ${MAX_LIMIT} is capped`),
  next: z.string().optional(),
  prev: z.string().optional(),
  next_cursor: z.string().optional().describe('older spelling of next'),
  prev_cursor: z.string().optional().describe('older spelling of prev'),
  order_by: z.enum(['time']).optional(),
  dir: Dir.optional().describe('default desc'),
  direction: Dir.optional().describe('older spelling of dir'),
  ...Include,
})

export const ListQuery = PageQuery.extend({
  tenant_id: List.describe('tenant (workspace) ids; the admin key only, a tenant token may name only its own'),
  destination_id: List.describe('destination (webhook) ids'),
  destination_type: List.describe('only webhook destinations exist'),
})

/** The parameters that take a list; any other repeated parameter takes its first value. */
export const REPEATABLE: ReadonlySet<string> = new Set([
  'event_id',
  'topic',
  'include',
  'tenant_id',
  'destination_id',
  'destination_type',
])

export type PageQueryInput = z.output<typeof PageQuery>
export type ListQueryInput = z.output<typeof ListQuery>

export interface Includes {
  event: boolean
  eventData: boolean
  responseData: boolean
}

/** Unknown include values are ignored, as Outpost ignores them. */
export function includes(values: string[] | undefined): Includes {
  const set = new Set(values)
  return {
    event: set.has('event') || set.has('event.data'),
    eventData: set.has('event.data'),
    responseData: set.has('response_data'),
  }
}

function timeRange(query: PageQueryInput): TimeRange | undefined {
  const range: TimeRange = {}
  const gte = query['time[gte]'] ?? query.time_gte
  const lte = query['time[lte]'] ?? query.time_lte
  if (gte !== undefined) range.gte = gte
  if (lte !== undefined) range.lte = lte
  if (query['time[gt]'] !== undefined) range.gt = query['time[gt]']
  if (query['time[lt]'] !== undefined) range.lt = query['time[lt]']
  return Object.keys(range).length > 0 ? range : undefined
}

export function pageInput(query: PageQueryInput): AttemptListInput {
  return {
    eventIds: query.event_id,
    topics: query.topic,
    status: query.status,
    time: timeRange(query),
    dir: query.dir ?? query.direction ?? 'desc',
    limit: Math.min(query.limit ?? DEFAULT_LIMIT, MAX_LIMIT),
    next: query.next ?? query.next_cursor,
    prev: query.prev ?? query.prev_cursor,
  }
}

export function listInput(query: ListQueryInput): AttemptListInput {
  // Every destination is a webhook: asking only for other types matches nothing.
  const otherTypesOnly = query.destination_type !== undefined && !query.destination_type.includes('webhook')
  return { ...pageInput(query), tenantIds: query.tenant_id, destinationIds: otherTypesOnly ? [] : query.destination_id }
}
