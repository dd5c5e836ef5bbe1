import type { Store } from '../../app/store.js'
import type { AttemptRecord } from '../../domain/attempt.js'
import type { DeviceRecord } from '../../domain/device.js'
import type { LatchkeyEvent } from '../../domain/events.js'
import { DatabaseUnreachableError } from '../errors.js'
import { randomUUID } from 'node:crypto'
import { PgAttempts, settledNotification } from './attempts.js'
import { PgCaches } from './cache.js'
import { isConnectionError, PgDb } from './database.js'
import { ATTEMPT_SETTLED_CHANNEL, PgListener } from './notify.js'
import { PgDeliveryClaims } from './claims.js'
import { PgDeliveries } from './deliveries.js'
import { PostgresDeliveryLog } from './delivery-log.js'
import { PgDevices } from './devices.js'
import { PgEvents } from './events.js'
import { eventNotices } from '../event-notices.js'
import { Remembered } from './remembered.js'
import { PgRetention } from './retention.js'
import { PgWebhooks } from './webhooks.js'
import { PgSettings, PgWorkspaces } from './workspaces.js'

export { PostgresDeliveryLog } from './delivery-log.js'
export { DatabaseUnreachableError } from '../errors.js'

export interface PostgresStoreOptions {
  /** postgres://USER:PASS@HOST:PORT/DB */
  url: string
  poolMax?: number
  newId: () => string
  now: () => string
  /** After a commit: the events it recorded, and the deliveries queued since the last call (eventNotices). */
  onEvents?: (events: LatchkeyEvent[], deliveriesQueued?: number) => void
  /** Losing and regaining the database, and other background failures. */
  onError?: (error: unknown, context: string) => void
}

export interface PostgresStore extends Store {
  readonly db: PgDb
  /** The delivery log behind both delivery dialects, on this store's pool. */
  readonly deliveryLog: PostgresDeliveryLog
  /** Whether the database answers, as far as the store knows: for /readyz. */
  ready(): boolean
  /** Called each time the database answers again after it was lost. */
  onRestored(listener: () => void): void
}

/** Connects, migrates (under an advisory lock) and returns the store; throws DatabaseUnreachableError when down. */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const db = new PgDb({
    url: options.url,
    poolMax: options.poolMax ?? 10,
    ...(options.onError ? { onError: options.onError } : {}),
  })
  try {
    await db.migrate()
  } catch (error) {
    await db.close().catch(() => {})
    throw isConnectionError(error) ||
      (error as { code?: string }).code === '3D000' ||
      (error as { code?: string }).code === '28P01'
      ? new DatabaseUnreachableError(options.url, error)
      : error
  }
  // One LISTEN connection per instance, for every channel (docs/scale-out.md#waking).
  const listener = new PgListener(options.url, options.onError ?? (() => {}))
  const caches = new PgCaches(listener, () => Date.parse(options.now()))
  const notices = eventNotices(options.onEvents ?? (() => {}))
  const ctx = { db, newId: options.newId, now: options.now, ...notices }
  const webhooks = new PgWebhooks(ctx)
  const deliveries = new PgDeliveries(ctx, webhooks)
  const events = new PgEvents(ctx, webhooks)
  const origin = randomUUID()
  const remembered = { attempts: new Remembered<AttemptRecord>(), devices: new Remembered<DeviceRecord>() }
  const attempts = new PgAttempts(ctx, events, origin, remembered)
  return {
    db,
    deliveryLog: new PostgresDeliveryLog(db),
    settings: new PgSettings(ctx),
    workspaces: new PgWorkspaces(ctx, caches),
    devices: new PgDevices(ctx, events, attempts, caches, remembered.devices),
    attempts,
    events,
    webhooks,
    deliveries,
    retention: new PgRetention(ctx),
    ready: () => db.ready,
    onRestored: (listener) => db.onRestored(listener),
    onAttemptSettled: (wake) =>
      listener.listen(ATTEMPT_SETTLED_CHANNEL, (payload) => {
        const attemptId = settledNotification(payload, origin)
        if (attemptId !== undefined) wake(attemptId)
      }),
    deliveryClaims: new PgDeliveryClaims(db, listener),
    close: async () => {
      await listener.close()
      await db.close()
    },
  }
}
