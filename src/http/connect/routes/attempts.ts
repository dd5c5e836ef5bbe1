import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { AttemptService } from '../../../app/attempts.js'
import { LatchkeyError } from '../../../domain/errors.js'
import { presentAttempt, presentPagination } from '../presenters.js'
import { connectRoute } from '../route.js'

const LockInput = z.object({
  device_id: z.string().min(1),
  sync: z.boolean().optional(),
  timeout_ms: z.number().int().min(1000).max(60_000).optional(),
})
const AttemptId = z.object({ action_attempt_id: z.string().min(1) })

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  const key = Array.isArray(header) ? header[0] : header
  if (!key || key.length > 255) throw new LatchkeyError('invalid_input', 'Idempotency-Key must be 1 to 255 characters')
  return key
}

/** Lock commands and the attempts that track them (docs/api.md). */
export function registerAttemptRoutes(app: FastifyInstance, attempts: AttemptService): void {
  for (const [path, action] of [
    ['/locks/lock_door', 'LOCK_DOOR'],
    ['/locks/unlock_door', 'UNLOCK_DOOR'],
  ] as const) {
    connectRoute(app, {
      path,
      methods: ['POST'],
      access: 'workspace',
      summary: `${action === 'LOCK_DOOR' ? 'Lock' : 'Unlock'} a door. Honours Idempotency-Key; sync: true waits for the outcome.`,
      input: LockInput,
      handler: async (input, { workspaceId, request }) => {
        const attempt = await attempts.request(
          workspaceId,
          action,
          input,
          idempotencyKey(request.headers['idempotency-key']),
        )
        return { action_attempt: presentAttempt(attempt) }
      },
    })
  }

  connectRoute(app, {
    path: '/action_attempts/get',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'Get an action attempt.',
    input: AttemptId,
    handler: async (input, { workspaceId }) => ({
      action_attempt: presentAttempt(await attempts.get(workspaceId, input.action_attempt_id)),
    }),
  })

  connectRoute(app, {
    path: '/action_attempts/list',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'List action attempts, newest first: by ids, by device, or all.',
    input: z.object({
      action_attempt_ids: z.array(z.string().min(1)).max(1000).optional(),
      device_id: z.string().min(1).optional(),
      limit: z.number().int().min(1).max(1000).default(500),
      page_cursor: z.string().nullish(),
    }),
    handler: async (input, { workspaceId, request }) => {
      const page = await attempts.list(workspaceId, {
        limit: input.limit,
        ...(input.action_attempt_ids ? { attemptIds: input.action_attempt_ids } : {}),
        ...(input.device_id ? { deviceId: input.device_id } : {}),
        ...(input.page_cursor ? { cursor: input.page_cursor } : {}),
      })
      return {
        action_attempts: page.items.map(presentAttempt),
        pagination: presentPagination(page, request, input),
      }
    },
  })

  connectRoute(app, {
    path: '/action_attempts/history',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: 'Every transition of an attempt with its time: created, sent, accepted, settled, late or duplicate acks.',
    input: AttemptId,
    handler: async (input, { workspaceId }) => ({
      history: await attempts.history(workspaceId, input.action_attempt_id),
    }),
  })
}
