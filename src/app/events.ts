import { iso, type Clock } from '../domain/clock.js'
import { LatchkeyError, notFound } from '../domain/errors.js'
import type { EventType, LatchkeyEvent } from '../domain/events.js'
import type { Page } from '../domain/page.js'
import type { EventStore } from './store.js'

export interface EventServiceDeps {
  store: { events: EventStore }
  clock: Clock
}

export interface EventListInput {
  since?: string | undefined
  between?: [string, string] | undefined
  deviceIds?: string[] | undefined
  eventTypes?: EventType[] | undefined
  actionAttemptId?: string | undefined
  limit: number
  cursor?: string | undefined
}

/** Without `since` or `between`, the last 24 h (Seam requires one; docs/api.md makes it optional). */
export const DEFAULT_EVENT_WINDOW_MS = 24 * 60 * 60 * 1000

/** The event log of a workspace, read through the Connect API (docs/api.md#events). */
export function createEventService(deps: EventServiceDeps) {
  const { store } = deps

  function window(input: EventListInput): { since: string; until?: string } {
    if (input.since !== undefined && input.between !== undefined) {
      throw new LatchkeyError('invalid_input', 'Pass either since or between, not both', {
        validation_errors: { between: { _errors: ['cannot be combined with since'] } },
      })
    }
    if (input.between) return { since: input.between[0], until: input.between[1] }
    return { since: input.since ?? iso(deps.clock.now() - DEFAULT_EVENT_WINDOW_MS) }
  }

  return {
    async get(workspaceId: string, eventId: string): Promise<LatchkeyEvent> {
      const event = await store.events.get(workspaceId, eventId)
      if (!event) throw notFound('event_not_found', 'Event')
      return event
    },

    list(workspaceId: string, input: EventListInput): Promise<Page<LatchkeyEvent>> {
      return store.events.list(workspaceId, {
        ...window(input),
        limit: input.limit,
        ...(input.deviceIds?.length ? { deviceIds: input.deviceIds } : {}),
        ...(input.eventTypes?.length ? { eventTypes: input.eventTypes } : {}),
        ...(input.actionAttemptId !== undefined ? { actionAttemptId: input.actionAttemptId } : {}),
        ...(input.cursor !== undefined ? { cursor: input.cursor } : {}),
      })
    },
  }
}

export type EventService = ReturnType<typeof createEventService>
