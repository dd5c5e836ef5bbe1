import { LatchkeyError, notFound } from '../domain/errors.js'
import type { ApiKeyRecord, Workspace } from '../domain/workspace.js'
import { newApiKey, sameDigest, sha256 } from './credentials.js'
import type { WorkspaceStore } from './store.js'

export type Caller = { kind: 'admin' } | { kind: 'workspace'; workspaceId: string }

export interface WorkspaceServiceDeps {
  store: { workspaces: WorkspaceStore }
  newId: () => string
  now: () => string
  /** SHA-256 of the admin key in force. */
  adminKeyHash: string
}

/** Workspaces, their API keys, and who a bearer key belongs to. */
export function createWorkspaceService(deps: WorkspaceServiceDeps) {
  const { store } = deps

  async function issueKey(
    workspaceId: string,
    name: string | null,
  ): Promise<{ api_key: ApiKeyRecord & { token: string } }> {
    const token = newApiKey()
    const record: ApiKeyRecord = { api_key_id: deps.newId(), workspace_id: workspaceId, name, created_at: deps.now() }
    await store.workspaces.createApiKey(record, sha256(token))
    return { api_key: { ...record, token } }
  }

  return {
    /** Resolves a bearer key; undefined means 401. */
    async authenticate(token: string): Promise<Caller | undefined> {
      const hash = sha256(token)
      if (sameDigest(hash, deps.adminKeyHash)) return { kind: 'admin' }
      const workspaceId = await store.workspaces.findByKeyHash(hash)
      return workspaceId ? { kind: 'workspace', workspaceId } : undefined
    },

    async create(name: string) {
      const workspace: Workspace = { workspace_id: deps.newId(), name, created_at: deps.now() }
      await store.workspaces.create(workspace)
      const { api_key } = await issueKey(workspace.workspace_id, 'default')
      return { workspace, api_key }
    },

    async get(workspaceId: string): Promise<Workspace> {
      const workspace = await store.workspaces.get(workspaceId)
      if (!workspace) throw notFound('workspace_not_found', 'Workspace')
      return workspace
    },

    list: () => store.workspaces.list(),
    count: () => store.workspaces.count(),

    async createApiKey(workspaceId: string, name: string | null) {
      await this.get(workspaceId)
      return issueKey(workspaceId, name)
    },

    async deleteApiKey(workspaceId: string, apiKeyId: string): Promise<void> {
      if (!(await store.workspaces.deleteApiKey(workspaceId, apiKeyId))) throw notFound('api_key_not_found', 'API key')
    },
  }
}

export type WorkspaceService = ReturnType<typeof createWorkspaceService>

/** The workspace a caller acts on: its own, or for the admin the one named by `seam-workspace`. */
export function workspaceOf(caller: Caller, requested: string | undefined): string {
  if (caller.kind === 'workspace') return caller.workspaceId
  if (!requested)
    throw new LatchkeyError('invalid_input', 'the admin key must name a workspace in the seam-workspace header')
  return requested
}
