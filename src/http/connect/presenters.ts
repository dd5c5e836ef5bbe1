import type { FastifyRequest } from 'fastify'
import type { ActionAttempt, AttemptRecord } from '../../domain/attempt.js'
import { toPublicAttempt } from '../../domain/attempt.js'
import { batteryStatus, type DeviceRecord } from '../../domain/device.js'
import type { Page } from '../../domain/page.js'
import type { Webhook } from '../../domain/webhook.js'
import { linkBase } from '../public-url.js'

/** The Seam-shaped device object of docs/api.md. */
export function presentDevice(device: DeviceRecord) {
  const p = device.props
  return {
    device_id: device.device_id,
    workspace_id: device.workspace_id,
    device_type: 'mqtt_lock',
    display_name: device.nickname ?? device.display_name,
    nickname: device.nickname ?? undefined,
    created_at: device.created_at,
    is_managed: true,
    capabilities_supported: ['lock', 'battery'],
    can_remotely_lock: device.can_remotely_lock,
    can_remotely_unlock: device.can_remotely_unlock,
    custom_metadata: device.custom_metadata,
    errors: p.online
      ? []
      : [
          {
            error_code: 'device_offline',
            message: 'Device is offline',
            is_device_error: true,
            created_at: p.last_seen_at ?? device.created_at,
          },
        ],
    warnings: [],
    properties: {
      name: device.display_name,
      online: p.online,
      locked: p.locked ?? false,
      door_open: p.door_open ?? undefined,
      battery_level: p.battery_level ?? undefined,
      battery:
        p.battery_level === null ? undefined : { level: p.battery_level, status: batteryStatus(p.battery_level) },
      jammed: p.jammed ?? false,
      firmware_version: p.firmware_version ?? undefined,
      last_seen_at: p.last_seen_at ?? undefined,
    },
  }
}

export function presentAttempt(attempt: AttemptRecord): ActionAttempt {
  return toPublicAttempt(attempt)
}

/** Seam's pagination object; `next_page_url` repeats the list call as a GET with the cursor. */
export function presentPagination(page: Page<unknown>, request: FastifyRequest, input: Record<string, unknown>) {
  const next = page.nextCursor
  let nextUrl: string | null = null
  if (next !== null) {
    // The same list call as a GET: every filter of this request, and the cursor.
    // Built on a fixed base so that a hostile Host header can neither break it nor be echoed (docs/api.md).
    const base = linkBase(request)
    const u = new URL(`http://latchkey.invalid${request.routeOptions.url ?? ''}`)
    for (const [key, value] of Object.entries(input)) {
      if (key === 'page_cursor' || value === undefined || value === null) continue
      if (Array.isArray(value)) for (const item of value) u.searchParams.append(key, String(item))
      else u.searchParams.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value))
    }
    u.searchParams.set('page_cursor', next)
    nextUrl = `${base}${u.pathname}${u.search}`
  }
  return { has_next_page: next !== null, next_page_cursor: next, next_page_url: nextUrl }
}

/** Seam's webhook object plus its state: `enabled` and why it was disabled. The secret is the owner's to see. */
export function presentWebhook(webhook: Webhook) {
  return {
    webhook_id: webhook.webhook_id,
    workspace_id: webhook.workspace_id,
    url: webhook.url,
    event_types: webhook.event_types,
    secret: webhook.secret,
    enabled: webhook.enabled,
    disabled_reason: webhook.disabled_reason,
    disabled_at: webhook.disabled_at,
    created_at: webhook.created_at,
    updated_at: webhook.updated_at,
  }
}
