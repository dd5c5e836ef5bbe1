/**
 * Versioned schema. `PRAGMA user_version` holds the number of migrations applied; each runs in its own transaction
 * at start-up. Append only: a shipped migration is never edited.
 */
/**
 * The event types migration 5 keys by a small integer in the delivery-attempt listing indexes (`event_type_key`): the
 * key of a type is its position here plus one. Part of migration 5, so never edited: an event type added later is
 * keyed by its name (the column's `ELSE`), which every listing handles alike (delivery-log-sql.ts).
 */
export const EVENT_TYPE_KEYS: readonly string[] = [
  'action_attempt.lock_door.succeeded',
  'action_attempt.lock_door.failed',
  'action_attempt.unlock_door.succeeded',
  'action_attempt.unlock_door.failed',
  'lock.locked',
  'lock.unlocked',
  'lock.access_denied',
  'device.connected',
  'device.disconnected',
  'device.low_battery',
  'device.tampered',
  'device.added',
  'device.deleted',
]

const EVENT_TYPE_KEY = `CASE event_type ${EVENT_TYPE_KEYS.map((type, i) => `WHEN '${type}' THEN ${i + 1}`).join(' ')} ELSE event_type END`

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
  // 2: webhooks, their deliveries (one per event × webhook, written with the event: the outbox) and every attempt.
  `
  CREATE TABLE webhooks (
    seq INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    disabled_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
  );
  CREATE INDEX webhooks_by_workspace ON webhooks(workspace_id, seq) WHERE deleted_at IS NULL;
  CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    held INTEGER NOT NULL DEFAULT 0,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    retries_scheduled INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_attempt_at TEXT,
    last_evidence_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  -- Keys that grow with time keep these B-trees append-mostly: random keys halve insert throughput (docs/webhooks.md).
  CREATE UNIQUE INDEX deliveries_by_event ON deliveries(event_seq, webhook_id);
  -- Pending deliveries per webhook, in event order: recovery, hold, release and cancel read a range of it, and
  -- holding or releasing flips a column without moving the row in or out of an index.
  CREATE INDEX deliveries_pending ON deliveries(webhook_id, seq) WHERE status = 'pending';
  CREATE TABLE delivery_attempts (
    seq INTEGER PRIMARY KEY,
    attempt_id TEXT NOT NULL UNIQUE,
    delivery_seq INTEGER NOT NULL,
    workspace_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    manual INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('success', 'failed')),
    attempted_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    response_code INTEGER,
    response_headers TEXT,
    response_body TEXT,
    error_message TEXT,
    signature TEXT NOT NULL,
    will_retry INTEGER NOT NULL,
    evidence_id TEXT NOT NULL
  );
  CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts(delivery_seq, attempt_number);
  `,
  // 3: the delivery-attempt APIs (docs/deliveries.md). Every list is ordered by (attempted_at, seq), and SQLite ends
  // every index with the rowid (seq), so each index yields that order once its leading columns are fixed. Each index
  // leads with what a listing pins (a destination, a tenant, or nothing), then event type, status and will_retry:
  // a listing merges one range per combination of those values (the v1 dialect's delivered / retrying / failed are
  // (status, will_retry) pairs), newest or oldest first, with no sort, no offset and no per-row check. An event
  // filter goes through the event's own deliveries (deliveries_by_event, delivery_attempts_by_delivery).
  `
  CREATE INDEX delivery_attempts_by_topic ON delivery_attempts(event_type, status, will_retry, attempted_at);
  CREATE INDEX delivery_attempts_by_tenant ON delivery_attempts(workspace_id, event_type, status, will_retry, attempted_at);
  CREATE INDEX delivery_attempts_by_destination ON delivery_attempts(webhook_id, event_type, status, will_retry, attempted_at);
  -- The v1 dialect's pending rows: the next automatic attempt of each delivery, by tenant and due time. Small: only
  -- deliveries waiting for an attempt are in it.
  CREATE INDEX deliveries_scheduled ON deliveries(workspace_id, next_attempt_at)
    WHERE status = 'pending' AND held = 0 AND next_attempt_at IS NOT NULL;
  `,
  // 4: an attempt's history as a column of its row, a JSON array of {kind, at, detail?} entries oldest first, instead
  // of a table of its own. Every transition rewrites the attempt's row anyway; the table and its index were two more
  // b-trees written per commit, a fifth of the bytes per lock command (docs/performance.md#where-the-bytes-go).
  // The entries keep their order (the old table's rowid); detail is JSON text in the table and a JSON value here.
  `
  ALTER TABLE action_attempts ADD COLUMN history TEXT NOT NULL DEFAULT '[]';
  UPDATE action_attempts SET history = (
    SELECT json_group_array(
      CASE WHEN h.detail IS NULL THEN json_object('kind', h.kind, 'at', h.at)
        ELSE json_object('kind', h.kind, 'at', h.at, 'detail', json(h.detail)) END
      ORDER BY h.rowid)
    FROM attempt_history h WHERE h.action_attempt_id = action_attempts.action_attempt_id
  )
  WHERE action_attempt_id IN (SELECT action_attempt_id FROM attempt_history);
  DROP TABLE attempt_history;
  `,
  // 5: the delivery-attempt listing indexes keyed by a small integer per event type instead of its name. At 512-byte
  // pages an index cell keeps at most 102 bytes in its page; an entry of an `action_attempt.*` attempt in
  // delivery_attempts_by_destination or _by_tenant (a UUID, a 36-character type, the status, the time, the rowid:
  // ~113 bytes) spilled the rest onto an overflow page of its own, two more pages written per delivery
  // (docs/performance.md#fourth-pass-index-entries-that-fit-their-page). The key is a VIRTUAL generated column:
  // nothing is added to the rows, nothing is rewritten but the three indexes. Same columns otherwise, in the same order,
  // so every listing reads the same ranges in the same order (docs/performance.md#listing-delivery-attempts-with-1000000-rows);
  // SQLite reads a virtual column's value from the row, so the ranges are no longer read from the index alone.
  `
  ALTER TABLE delivery_attempts ADD COLUMN event_type_key INTEGER GENERATED ALWAYS AS (${EVENT_TYPE_KEY}) VIRTUAL;
  DROP INDEX delivery_attempts_by_topic;
  DROP INDEX delivery_attempts_by_tenant;
  DROP INDEX delivery_attempts_by_destination;
  CREATE INDEX delivery_attempts_by_topic ON delivery_attempts(event_type_key, status, will_retry, attempted_at);
  CREATE INDEX delivery_attempts_by_tenant ON delivery_attempts(workspace_id, event_type_key, status, will_retry, attempted_at);
  CREATE INDEX delivery_attempts_by_destination ON delivery_attempts(webhook_id, event_type_key, status, will_retry, attempted_at);
  `,
]
