import type { SettingsStore, WorkspaceStore } from '../../app/store.js'
import type { ApiKeyRecord, Workspace } from '../../domain/workspace.js'
import { CACHE_CHANNEL, type PgCaches } from './cache.js'
import type { PgContext } from './context.js'

export class PgSettings implements SettingsStore {
  constructor(private readonly ctx: PgContext) {}

  async get(key: string): Promise<string | undefined> {
    const rows = await this.ctx.db.query<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key])
    return rows[0]?.value
  }

  setIfAbsent(key: string, value: string): Promise<string> {
    return this.ctx.db.writes.run(async (tx) => {
      tx.write('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, value])
      const rows = await tx.query<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key])
      return rows[0]?.value ?? value
    })
  }
}

export class PgWorkspaces implements WorkspaceStore {
  constructor(
    private readonly ctx: PgContext,
    private readonly caches: PgCaches,
  ) {}

  async create(workspace: Workspace): Promise<void> {
    await this.ctx.db.writes.run((tx) =>
      tx.exec('INSERT INTO workspaces (workspace_id, name, created_at) VALUES (?, ?, ?)', [
        workspace.workspace_id,
        workspace.name,
        workspace.created_at,
      ]),
    )
  }

  async get(workspaceId: string): Promise<Workspace | undefined> {
    const rows = await this.ctx.db.query<Workspace>(
      'SELECT workspace_id, name, created_at FROM workspaces WHERE workspace_id = ?',
      [workspaceId],
    )
    return rows[0]
  }

  async list(): Promise<Workspace[]> {
    return this.ctx.db.query<Workspace>('SELECT workspace_id, name, created_at FROM workspaces ORDER BY seq')
  }

  async count(): Promise<number> {
    return (await this.ctx.db.query<{ n: number }>('SELECT count(*) AS n FROM workspaces'))[0]?.n ?? 0
  }

  async createApiKey(key: ApiKeyRecord, keyHash: string): Promise<void> {
    await this.ctx.db.writes.run((tx) =>
      tx.exec('INSERT INTO api_keys (api_key_id, workspace_id, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)', [
        key.api_key_id,
        key.workspace_id,
        keyHash,
        key.name,
        key.created_at,
      ]),
    )
  }

  /** Cached per instance (PgCaches): every request authenticates, keys rarely change. */
  findByKeyHash(keyHash: string): Promise<string | undefined> {
    return this.caches.keys.read(keyHash, async () => {
      const rows = await this.ctx.db.query<{ workspace_id: string }>(
        'SELECT workspace_id FROM api_keys WHERE key_hash = ?',
        [keyHash],
      )
      return rows[0]?.workspace_id
    })
  }

  async deleteApiKey(workspaceId: string, apiKeyId: string): Promise<boolean> {
    const changes = await this.ctx.db.writes.run(async (tx) => {
      const deleted = await tx.exec('DELETE FROM api_keys WHERE api_key_id = ? AND workspace_id = ?', [
        apiKeyId,
        workspaceId,
      ])
      // Every instance forgets its cached keys when this commits (docs/scale-out.md#caches).
      if (deleted > 0) tx.write(`SELECT pg_notify('${CACHE_CHANNEL}', 'keys')`)
      return deleted
    })
    if (changes > 0) this.caches.keys.clear()
    return changes > 0
  }
}
