import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { DeviceService } from '../../../app/devices.js'
import { Instant } from '../../instant.js'
import { presentDevice, presentPagination } from '../presenters.js'
import { connectRoute } from '../route.js'

/**
 * Seam's limits on `custom_metadata`: at most 50 keys of at most 40 characters, each value a string of at most 500
 * characters or a boolean. `__proto__` is refused rather than silently dropped by the object it would be read into.
 */
export const MAX_METADATA_KEYS = 50
const MetadataRecord = z
  .record(z.string().max(40), z.union([z.string().max(500), z.boolean()]))
  .refine((record) => Object.keys(record).length <= MAX_METADATA_KEYS, { message: `at most ${MAX_METADATA_KEYS} keys` })
const CustomMetadata = z.preprocess((raw, ctx) => {
  // zod reads a record into a plain object, which would drop this key: it is checked on the raw input.
  if (raw !== null && typeof raw === 'object' && Object.hasOwn(raw, '__proto__')) {
    ctx.addIssue({ code: 'custom', message: 'the key __proto__ is not allowed', path: ['__proto__'], input: raw })
  }
  return raw
}, MetadataRecord)
const DeviceId = z.object({ device_id: z.string().min(1) })
const ListInput = z.object({
  device_ids: z.array(z.string().min(1)).max(1000).optional(),
  limit: z.number().int().min(1).max(1000).default(500),
  page_cursor: z.string().nullish(),
  created_before: Instant.optional(),
})

/** Devices and their lock-shaped aliases (docs/api.md). Every mqtt_lock is a lock: /locks/* list the same objects. */
export function registerDeviceRoutes(app: FastifyInstance, devices: DeviceService): void {
  connectRoute(app, {
    path: '/devices/create',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Create an MQTT lock; its credentials are returned once.',
    input: z.object({
      name: z.string().min(1).max(200),
      custom_metadata: CustomMetadata.optional(),
      can_remotely_lock: z.boolean().optional(),
      can_remotely_unlock: z.boolean().optional(),
    }),
    handler: async (input, { workspaceId }) => {
      const { device, mqtt_credentials } = await devices.create(workspaceId, input)
      return { device: presentDevice(device), mqtt_credentials }
    },
  })

  for (const [path, key] of [
    ['/devices/get', 'device'],
    ['/locks/get', 'lock'],
  ] as const) {
    connectRoute(app, {
      path,
      methods: ['POST', 'GET'],
      access: 'workspace',
      summary: 'Get a device.',
      input: DeviceId,
      handler: async (input, { workspaceId }) => {
        const device = presentDevice(await devices.get(workspaceId, input.device_id))
        // The SDK reads `device` for both; `lock` is Seam's older key for /locks/get.
        return key === 'lock' ? { device, lock: device } : { device }
      },
    })
  }

  for (const [path, key] of [
    ['/devices/list', 'devices'],
    ['/locks/list', 'locks'],
  ] as const) {
    connectRoute(app, {
      path,
      methods: ['POST', 'GET'],
      access: 'workspace',
      summary: 'List devices, oldest first, with cursor pagination.',
      input: ListInput,
      handler: async (input, { workspaceId, request }) => {
        const page = await devices.list(workspaceId, {
          limit: input.limit,
          ...(input.device_ids ? { deviceIds: input.device_ids } : {}),
          ...(input.created_before ? { createdBefore: input.created_before } : {}),
          ...(input.page_cursor ? { cursor: input.page_cursor } : {}),
        })
        const list = page.items.map(presentDevice)
        const pagination = presentPagination(page, request, input)
        return key === 'locks' ? { devices: list, locks: list, pagination } : { devices: list, pagination }
      },
    })
  }

  connectRoute(app, {
    path: '/devices/update',
    methods: ['PATCH', 'POST'],
    access: 'workspace',
    summary: 'Rename a device or change its metadata or capabilities.',
    input: DeviceId.extend({
      name: z.string().min(1).max(200).optional(),
      nickname: z.string().max(200).nullable().optional(),
      custom_metadata: CustomMetadata.optional(),
      can_remotely_lock: z.boolean().optional(),
      can_remotely_unlock: z.boolean().optional(),
    }),
    handler: async ({ device_id, name, ...rest }, { workspaceId }) => {
      await devices.update(workspaceId, device_id, { ...(name !== undefined ? { display_name: name } : {}), ...rest })
    },
  })

  connectRoute(app, {
    path: '/devices/delete',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Delete a device: pending attempts settle as device_removed and its MQTT session is closed.',
    input: DeviceId,
    handler: async (input, { workspaceId }) => {
      await devices.delete(workspaceId, input.device_id)
    },
  })

  connectRoute(app, {
    path: '/devices/rotate_credentials',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Issue a new MQTT secret; the old one stops working at once.',
    input: DeviceId,
    handler: async (input, { workspaceId }) => ({
      mqtt_credentials: await devices.rotateCredentials(workspaceId, input.device_id),
    }),
  })
}
