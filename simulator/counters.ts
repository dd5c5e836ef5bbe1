import type { Ack } from '../devices/index.js'

/** What one lock (or a whole fleet, summed) has seen and sent. */
export interface LockCounters {
  /** Valid commands, first delivery of each command_id. */
  commandsReceived: number
  /** Repeated command_ids (QoS 1 redelivery or a re-publish): answered from memory, not re-run. */
  duplicatesReceived: number
  /** Payloads that failed CommandSchema (or were oversize): dropped. */
  invalidReceived: number
  /** Commands the `silent` knob swallowed. */
  silenced: number
  acksSent: AckCounters
  eventsSent: number
  connects: number
  disconnects: number
}

export interface AckCounters {
  accepted: number
  success: number
  error: number
  errorsByType: Record<string, number>
}

export function emptyCounters(): LockCounters {
  return {
    commandsReceived: 0,
    duplicatesReceived: 0,
    invalidReceived: 0,
    silenced: 0,
    acksSent: { accepted: 0, success: 0, error: 0, errorsByType: {} },
    eventsSent: 0,
    connects: 0,
    disconnects: 0,
  }
}

export function countAck(counters: LockCounters, ack: Ack): void {
  counters.acksSent[ack.status] += 1
  if (ack.status === 'error' && ack.error) {
    const byType = counters.acksSent.errorsByType
    byType[ack.error.type] = (byType[ack.error.type] ?? 0) + 1
  }
}

/** Adds `from` into `into` (mutates `into`). */
export function addCounters(into: LockCounters, from: LockCounters): LockCounters {
  into.commandsReceived += from.commandsReceived
  into.duplicatesReceived += from.duplicatesReceived
  into.invalidReceived += from.invalidReceived
  into.silenced += from.silenced
  into.eventsSent += from.eventsSent
  into.connects += from.connects
  into.disconnects += from.disconnects
  into.acksSent.accepted += from.acksSent.accepted
  into.acksSent.success += from.acksSent.success
  into.acksSent.error += from.acksSent.error
  for (const [type, n] of Object.entries(from.acksSent.errorsByType)) {
    into.acksSent.errorsByType[type] = (into.acksSent.errorsByType[type] ?? 0) + n
  }
  return into
}

export function cloneCounters(c: LockCounters): LockCounters {
  return addCounters(emptyCounters(), c)
}
