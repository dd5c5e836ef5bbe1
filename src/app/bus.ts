import { EventEmitter } from 'eventemitter3'
import type { AttemptRecord } from '../domain/attempt.js'
import type { DeviceRecord } from '../domain/device.js'
import type { LatchkeyEvent } from '../domain/events.js'
import type { DeliveryAttempt } from '../domain/delivery.js'

/** In-process notifications, emitted after the change they describe is committed. Past tense, one map. */
export interface BusEvents {
  attemptSettled: [attempt: AttemptRecord]
  /** `deliveriesQueued`: deliveries inserted with them (0: none to read; undefined: unknown). */
  eventsCommitted: [events: LatchkeyEvent[], deliveriesQueued?: number]
  /** A webhook was enabled again: its held deliveries are due now. */
  deliveriesReleased: [webhookId: string]
  /** A webhook was disabled by its owner: its pending deliveries are held. */
  deliveriesHeld: [webhookId: string]
  /** An attempt was created or moved along its timeline without settling (sent, accepted). For live views. */
  attemptChanged: [attempt: AttemptRecord]
  /** A device message was applied to a device's properties (status, state, event, ack state). For live views. */
  deviceChanged: [device: DeviceRecord]
  /** A webhook delivery attempt was recorded, automatic or manual. For live views. */
  deliveryAttempted: [attempt: DeliveryAttempt]
}

export type Bus = EventEmitter<BusEvents>

export function createBus(): Bus {
  return new EventEmitter<BusEvents>()
}
