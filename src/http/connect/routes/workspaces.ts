import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { WorkspaceService } from '../../../app/workspaces.js'
import { LatchkeyError } from '../../../domain/errors.js'
import { connectRoute } from '../route.js'

function presentKey(key: {
  api_key_id: string
  workspace_id: string
  name: string | null
  created_at: string
  token: string
}) {
  return {
    api_key_id: key.api_key_id,
    workspace_id: key.workspace_id,
    name: key.name,
    created_at: key.created_at,
    token: key.token,
  }
}

/** Workspaces (admin) and workspace API keys. */
export function registerWorkspaceRoutes(app: FastifyInstance, workspaces: WorkspaceService): void {
  connectRoute(app, {
    path: '/workspaces/create',
    methods: ['POST'],
    access: 'admin',
    summary: 'Create a workspace and its first API key (admin).',
    input: z.object({ name: z.string().min(1).max(200) }),
    handler: async (input) => {
      const { workspace, api_key } = await workspaces.create(input.name)
      return { workspace, api_key: presentKey(api_key) }
    },
  })

  connectRoute(app, {
    path: '/workspaces/list',
    methods: ['POST', 'GET'],
    access: 'admin',
    summary: 'List every workspace (admin).',
    input: z.object({}),
    handler: async () => ({ workspaces: await workspaces.list() }),
  })

  connectRoute(app, {
    path: '/workspaces/get',
    methods: ['POST', 'GET'],
    access: 'workspace',
    summary: "Get the caller's workspace (the admin names one with workspace_id or seam-workspace).",
    input: z.object({ workspace_id: z.string().min(1).optional() }),
    handler: async (input, ctx) => {
      const { caller } = ctx
      // A workspace key sees only its own workspace; a foreign id answers as a missing one.
      if (caller.kind === 'admin') return { workspace: await workspaces.get(input.workspace_id ?? ctx.workspaceId) }
      if (input.workspace_id !== undefined && input.workspace_id !== caller.workspaceId) {
        throw new LatchkeyError('workspace_not_found', 'Workspace not found')
      }
      return { workspace: await workspaces.get(caller.workspaceId) }
    },
  })

  connectRoute(app, {
    path: '/api_keys/create',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Create another API key for the workspace; the token is shown once.',
    input: z.object({ name: z.string().max(200).optional() }),
    handler: async (input, { workspaceId }) => ({
      api_key: presentKey((await workspaces.createApiKey(workspaceId, input.name ?? null)).api_key),
    }),
  })

  connectRoute(app, {
    path: '/api_keys/delete',
    methods: ['POST'],
    access: 'workspace',
    summary: 'Delete an API key of the workspace; it stops working at once.',
    input: z.object({ api_key_id: z.string().min(1) }),
    handler: async (input, { workspaceId }) => {
      await workspaces.deleteApiKey(workspaceId, input.api_key_id)
    },
  })
}
