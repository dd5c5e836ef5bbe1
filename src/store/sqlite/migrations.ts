/**
 * Versioned schema. `PRAGMA user_version` holds the number of migrations applied; each runs in its own transaction
 * at start-up. Append only: a shipped migration is never edited.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: workspaces, keys, devices, action attempts and the event log.
  `
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE workspaces (
    seq INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE api_keys (
    api_key_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(workspace_id),
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE devices (
    seq INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(workspace_id),
    display_name TEXT NOT NULL,
    nickname TEXT,
    custom_metadata TEXT NOT NULL DEFAULT '{}',
    secret_hash TEXT NOT NULL,
    can_remotely_lock INTEGER NOT NULL DEFAULT 1,
    can_remotely_unlock INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    locked INTEGER,
    door_open INTEGER,
    jammed INTEGER,
    battery_level REAL,
    firmware_version TEXT,
    last_seen_at TEXT
  );
  CREATE INDEX devices_by_workspace ON devices(workspace_id, seq);
  CREATE TABLE action_attempts (
    seq INTEGER PRIMARY KEY,
    action_attempt_id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    accepted_at TEXT,
    completed_at TEXT,
    deadline_at TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT
  );
  CREATE INDEX attempts_by_workspace ON action_attempts(workspace_id, seq);
  CREATE INDEX attempts_by_device ON action_attempts(device_id, seq);
  CREATE INDEX attempts_pending ON action_attempts(status) WHERE status = 'pending';
  CREATE UNIQUE INDEX attempts_by_idempotency_key ON action_attempts(workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
  CREATE TABLE attempt_history (
    action_attempt_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX attempt_history_by_attempt ON attempt_history(action_attempt_id);
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    device_id TEXT,
    action_attempt_id TEXT,
    created_at TEXT NOT NULL,
    dedupe_key TEXT,
    body TEXT NOT NULL
  );
  CREATE INDEX events_by_workspace ON events(workspace_id, created_at, seq);
  CREATE INDEX events_by_attempt ON events(action_attempt_id) WHERE action_attempt_id IS NOT NULL;
  CREATE UNIQUE INDEX events_by_dedupe_key ON events(dedupe_key) WHERE dedupe_key IS NOT NULL;
  `,
]
