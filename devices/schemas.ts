import { z } from 'zod'

/** Largest payload the orchestrator reads; larger messages are dropped and counted (docs/mqtt.md#dropped-messages). */
export const MAX_PAYLOAD_BYTES = 16 * 1024

const isoTime = z.iso.datetime({ offset: true })

export const LockActionSchema = z.enum(['LOCK_DOOR', 'UNLOCK_DOOR'])
export type LockAction = z.infer<typeof LockActionSchema>

/** Error types a device may report in an `error` ack; anything else becomes `device_error`. */
export const DEVICE_ERROR_TYPES = [
  'lock_jammed',
  'door_open',
  'low_battery',
  'command_expired',
  'unsupported_action',
  'device_busy',
] as const
export type DeviceErrorType = (typeof DEVICE_ERROR_TYPES)[number]

export const DeviceStateSchema = z.object({
  locked: z.boolean(),
  door_open: z.boolean().optional(),
  jammed: z.boolean().optional(),
  battery_level: z.number().min(0).max(1).optional(),
  firmware_version: z.string().max(64).optional(),
})
export type DeviceState = z.infer<typeof DeviceStateSchema>

export const CommandSchema = z.object({
  command_id: z.uuid(),
  action: LockActionSchema,
  issued_at: isoTime,
  expires_at: isoTime,
})
export type Command = z.infer<typeof CommandSchema>

export const AckStatusSchema = z.enum(['accepted', 'success', 'error'])
export type AckStatus = z.infer<typeof AckStatusSchema>

export const AckSchema = z.object({
  command_id: z.uuid(),
  status: AckStatusSchema,
  error: z.object({ type: z.string().min(1).max(64), message: z.string().max(1024) }).optional(),
  state: DeviceStateSchema.optional(),
})
export type Ack = z.infer<typeof AckSchema>

export const StatusSchema = z.enum(['online', 'offline'])
export type DeviceStatus = z.infer<typeof StatusSchema>

export const DeviceEventTypeSchema = z.enum(['lock.locked', 'lock.unlocked', 'lock.access_denied', 'device.tampered'])
export type DeviceEventType = z.infer<typeof DeviceEventTypeSchema>

export const DeviceEventMethodSchema = z.enum(['manual', 'keycode', 'automatic', 'card', 'unknown'])

export const DeviceEventSchema = z.object({
  event_id: z.uuid().optional(),
  type: DeviceEventTypeSchema,
  method: DeviceEventMethodSchema.optional(),
  occurred_at: isoTime,
})
export type DeviceEvent = z.infer<typeof DeviceEventSchema>

/** `status` is plain text, not JSON. */
export function parseStatus(payload: Buffer | string): DeviceStatus | undefined {
  const parsed = StatusSchema.safeParse(payload.toString().trim())
  return parsed.success ? parsed.data : undefined
}

/** Parses a JSON payload against a schema; undefined for oversize, non-UTF-8-JSON or invalid payloads. */
export function parseJsonPayload<T>(schema: z.ZodType<T>, payload: Buffer | string): T | undefined {
  if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) return undefined
  let value: unknown
  try {
    value = JSON.parse(payload.toString())
  } catch {
    return undefined
  }
  const parsed = schema.safeParse(value)
  return parsed.success ? parsed.data : undefined
}
