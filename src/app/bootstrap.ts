import { chmod, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { newAdminKey, newServiceSecret, sha256 } from './credentials.js'
import type { SettingsStore, WorkspaceStore } from './store.js'
import type { WorkspaceService } from './workspaces.js'

export interface BootstrapCredentials {
  workspace_id: string
  api_key: string
  admin_api_key?: string
}

/**
 * The admin key in force: ADMIN_API_KEY when set; otherwise the hash stored at first start, or a new key made now
 * (returned so it can be shown once).
 */
export async function resolveAdminKey(
  store: { settings: SettingsStore },
  configured: string | undefined,
): Promise<{ hash: string; generated?: string }> {
  if (configured) return { hash: sha256(configured) }
  const stored = await store.settings.get('admin_key_hash')
  if (stored) return { hash: stored }
  const key = newAdminKey()
  const hash = await store.settings.setIfAbsent('admin_key_hash', sha256(key))
  return hash === sha256(key) ? { hash, generated: key } : { hash }
}

/** The HS256 secret for tenant tokens: configured, or made once and kept in the database. */
export async function resolveJwtSecret(
  store: { settings: SettingsStore },
  configured: string | undefined,
): Promise<string> {
  return configured ?? (await store.settings.setIfAbsent('jwt_secret', newServiceSecret()))
}

/**
 * Present beside bootstrap.json until a start has completed and shown its credentials: a first start that fails
 * after creating the database (a port in use) leaves it, and the next start shows the same credentials again.
 */
const UNSHOWN = 'bootstrap.unshown'

/**
 * First start on an empty database: a default workspace and key, written to DATA_DIR/bootstrap.json (0600). On a
 * later start, the credentials of a first start that never completed, read back from that file.
 */
export async function bootstrap(
  store: { workspaces: Pick<WorkspaceStore, 'count'> },
  workspaces: WorkspaceService,
  dataDir: string,
  generatedAdminKey: string | undefined,
): Promise<BootstrapCredentials | undefined> {
  if ((await store.workspaces.count()) > 0) return unshownCredentials(dataDir)
  const { workspace, api_key } = await workspaces.create('Default workspace')
  const credentials: BootstrapCredentials = {
    workspace_id: workspace.workspace_id,
    api_key: api_key.token,
    ...(generatedAdminKey ? { admin_api_key: generatedAdminKey } : {}),
  }
  const file = join(dataDir, 'bootstrap.json')
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 })
  await chmod(file, 0o600)
  await writeFile(join(dataDir, UNSHOWN), '', { mode: 0o600 })
  return credentials
}

async function unshownCredentials(dataDir: string): Promise<BootstrapCredentials | undefined> {
  try {
    await readFile(join(dataDir, UNSHOWN))
    return JSON.parse(await readFile(join(dataDir, 'bootstrap.json'), 'utf8')) as BootstrapCredentials
  } catch {
    // No marker (shown already), or bootstrap.json removed by the operator: nothing to show.
    return undefined
  }
}

/** The first-start credentials were shown: later starts stay silent about them. */
export async function markCredentialsShown(dataDir: string): Promise<void> {
  await rm(join(dataDir, UNSHOWN), { force: true })
}
