import { join } from 'node:path'
import type { Store } from '../../app/store.js'
import type { StoreDeps } from '../index.js'
import { SqliteAttempts } from './attempts.js'
import { CommitGate, openDatabase, startCheckpoints, WriteQueue } from './database.js'
import { SqliteDeliveries } from './deliveries.js'
import { SqliteDeliveryLog } from './delivery-log.js'
import { SqliteDevices } from './devices.js'
import { SqliteEvents } from './events.js'
import { SqliteRetention } from './retention.js'
import { SqliteWebhooks } from './webhooks.js'
import { SqliteSettings, SqliteWorkspaces } from './workspaces.js'
import { eventNotices } from '../event-notices.js'

export interface SqliteStoreDeps extends StoreDeps {
  /** A file path, or `:memory:`. */
  filename: string
}

export function databasePath(dataDir: string): string {
  return join(dataDir, 'latchkey.db')
}

export function createSqliteStore(deps: SqliteStoreDeps): Store {
  const db = openDatabase(deps.filename)
  const gate = new CommitGate()
  const writes = new WriteQueue(db, gate)
  const closeDatabase = startCheckpoints(db, { gate })
  const notices = eventNotices(deps.onEvents ?? (() => {}))
  const ctx = {
    db,
    writes,
    newId: deps.newId,
    now: deps.now,
    onEvents: notices.onEvents,
    deliveryQueued: () => notices.deliveriesQueued(1),
  }
  const webhooks = new SqliteWebhooks(ctx)
  const deliveries = new SqliteDeliveries(ctx, webhooks)
  const events = new SqliteEvents(ctx, deliveries)
  const attempts = new SqliteAttempts(ctx, events)
  return {
    settings: new SqliteSettings(ctx),
    workspaces: new SqliteWorkspaces(ctx),
    devices: new SqliteDevices(ctx, events, attempts),
    attempts,
    events,
    webhooks,
    deliveries,
    deliveryLog: new SqliteDeliveryLog(db),
    retention: new SqliteRetention(ctx),
    ready: () => db.open,
    onRestored: () => {},
    async close() {
      writes.close()
      await closeDatabase()
    },
  }
}
