import type { CommandSender } from './attempts.js'

/** Handles one device message; resolves once its effect is committed, and only then is the message acknowledged. */
export type DeviceMessageSink = (topic: string, payload: Buffer) => Promise<void>

/**
 * The orchestrator's link to the locks: commands out, device messages in. It is built before the services (the
 * attempt service sends through it) and started once the device message handler exists, so neither waits on the
 * other. Sending before `start` fails, as sending while disconnected does.
 */
export interface Transport extends CommandSender {
  readonly connected: boolean
  start(onMessage: DeviceMessageSink): Promise<void>
  close(): Promise<void>
}
