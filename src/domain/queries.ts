import type { EventType } from './events.js'

/**
 * What a page of the Connect lists asks for. `cursor` is an opaque cursor from a previous page; an empty id list
 * filters nothing.
 */

export interface DeviceListQuery {
  deviceIds?: string[]
  createdBefore?: string
  limit: number
  cursor?: string
}

export interface AttemptListQuery {
  attemptIds?: string[]
  deviceId?: string
  limit: number
  cursor?: string
}

export interface EventListQuery {
  since: string
  until?: string
  deviceIds?: string[]
  eventTypes?: EventType[]
  actionAttemptId?: string
  limit: number
  cursor?: string
}
