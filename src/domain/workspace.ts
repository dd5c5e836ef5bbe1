/** A tenant: every device, attempt, event and webhook belongs to exactly one. */
export interface Workspace {
  workspace_id: string
  name: string
  created_at: string
}

/** An API key as stored: its hash is kept apart, the token itself is shown once. */
export interface ApiKeyRecord {
  api_key_id: string
  workspace_id: string
  name: string | null
  created_at: string
}
