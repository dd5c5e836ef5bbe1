import type { SettingsStore, WorkspaceStore } from '../../app/store.js'
import type { ApiKeyRecord, Workspace } from '../../domain/workspace.js'
import { ReadCache } from '../read-cache.js'
import type { StoreContext } from './context.js'

export class SqliteSettings implements SettingsStore {
  constructor(private readonly ctx: StoreContext) {}

  async get(key: string): Promise<string | undefined> {
    const row = this.ctx.db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key)
    return row?.value
  }

  setIfAbsent(key: string, value: string): Promise<string> {
    return this.ctx.writes.run(() => {
      this.ctx.db
        .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING')
        .run(key, value)
      const row = this.ctx.db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key)
      return row?.value ?? value
    })
  }
}

export class SqliteWorkspaces implements WorkspaceStore {
  private readonly byKeyHash
  /** API key hash → its workspace: every request reads it (docs/scale-out.md#caches). */
  private readonly keys = new ReadCache<string>(() => true)

  constructor(private readonly ctx: StoreContext) {
    this.byKeyHash = ctx.db.prepare<[string], { workspace_id: string }>(
      'SELECT workspace_id FROM api_keys WHERE key_hash = ?',
    )
  }

  async create(workspace: Workspace): Promise<void> {
    await this.ctx.writes.run(() =>
      this.ctx.db
        .prepare('INSERT INTO workspaces (workspace_id, name, created_at) VALUES (?, ?, ?)')
        .run(workspace.workspace_id, workspace.name, workspace.created_at),
    )
  }

  async get(workspaceId: string): Promise<Workspace | undefined> {
    return this.ctx.db
      .prepare<[string], Workspace>('SELECT workspace_id, name, created_at FROM workspaces WHERE workspace_id = ?')
      .get(workspaceId)
  }

  async list(): Promise<Workspace[]> {
    return this.ctx.db
      .prepare<[], Workspace>('SELECT workspace_id, name, created_at FROM workspaces ORDER BY seq')
      .all()
  }

  async count(): Promise<number> {
    return (this.ctx.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM workspaces').get() as { n: number }).n
  }

  async createApiKey(key: ApiKeyRecord, keyHash: string): Promise<void> {
    await this.ctx.writes.run(() =>
      this.ctx.db
        .prepare('INSERT INTO api_keys (api_key_id, workspace_id, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(key.api_key_id, key.workspace_id, keyHash, key.name, key.created_at),
    )
  }

  findByKeyHash(keyHash: string): Promise<string | undefined> {
    return this.keys.read(keyHash, async () => this.byKeyHash.get(keyHash)?.workspace_id)
  }

  async deleteApiKey(workspaceId: string, apiKeyId: string): Promise<boolean> {
    const result = await this.ctx.writes.run(() => {
      const deleted = this.ctx.db
        .prepare('DELETE FROM api_keys WHERE api_key_id = ? AND workspace_id = ?')
        .run(apiKeyId, workspaceId)
      // In the job, which commits in the same synchronous run: no request reads between the commit and this.
      if (deleted.changes > 0) this.keys.clear()
      return deleted
    })
    return result.changes > 0
  }
}
