import type { ActionDevice, DeviceStore, DeviceUpdate, NewDevice, WriteOptions } from '../../app/store.js'
import type { AttemptRecord, Transition } from '../../domain/attempt.js'
import { changesSomething, type DeviceChange, type DeviceProps, type DeviceRecord } from '../../domain/device.js'
import type { EventDraft, LatchkeyEvent } from '../../domain/events.js'
import type { Page } from '../../domain/page.js'
import type { DeviceListQuery } from '../../domain/queries.js'
import { ReadCache } from '../read-cache.js'
import {
  ACTION_DEVICE_COLUMNS,
  actionDeviceFromRow,
  DEVICE_COLUMN_NAMES,
  DEVICE_COLUMNS,
  deviceFromRow,
  deviceRowOf,
  type ActionDeviceRow,
  type DeviceRow,
} from '../rows.js'
import type { SqliteAttempts } from './attempts.js'
import { toInt, type StoreContext } from './context.js'
import type { SqliteEvents } from './events.js'
import { compare, equals, listPage, oneOf } from './list-query.js'
import { rawColumns } from './raw-rows.js'

function propsParams(deviceId: string, props: DeviceProps): unknown[] {
  return [
    toInt(props.online),
    toInt(props.locked),
    toInt(props.door_open),
    toInt(props.jammed),
    props.battery_level,
    props.firmware_version,
    props.last_seen_at,
    deviceId,
  ]
}

export class SqliteDevices implements DeviceStore {
  private readonly stmts
  /**
   * Device id → what a lock or unlock request needs of it (docs/scale-out.md#caches). Forgotten by the write job
   * that changes it, which commits in the same synchronous run, so no request reads between the commit and that.
   */
  private readonly forActions = new ReadCache<ActionDevice>(() => true)

  constructor(
    private readonly ctx: StoreContext,
    private readonly events: SqliteEvents,
    private readonly attempts: SqliteAttempts,
  ) {
    const db = ctx.db
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO devices (device_id, workspace_id, display_name, nickname, custom_metadata, secret_hash, can_remotely_lock,
           can_remotely_unlock, created_at, online) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
      ),
      // Read by every device message's write job.
      byId: rawColumns(
        db.prepare<[string], unknown[]>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ?`),
        DEVICE_COLUMN_NAMES,
      ),
      forAction: db.prepare<[string], ActionDeviceRow>(
        `SELECT ${ACTION_DEVICE_COLUMNS} FROM devices WHERE device_id = ?`,
      ),
      byWorkspace: db.prepare<[string, string], DeviceRow>(
        `SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ? AND workspace_id = ?`,
      ),
      setProps: db.prepare(
        `UPDATE devices SET online = ?, locked = ?, door_open = ?, jammed = ?, battery_level = ?, firmware_version = ?,
           last_seen_at = ? WHERE device_id = ?`,
      ),
      secret: db.prepare<[string], { secret_hash: string }>('SELECT secret_hash FROM devices WHERE device_id = ?'),
      setSecret: db.prepare('UPDATE devices SET secret_hash = ? WHERE device_id = ? AND workspace_id = ?'),
      remove: db.prepare('DELETE FROM devices WHERE device_id = ?'),
      seen: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM events WHERE dedupe_key = ?'),
      online: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM devices WHERE online = 1'),
    }
  }

  async create({ device, secretHash, event }: NewDevice): Promise<void> {
    const recorded = await this.ctx.writes.run(() => {
      this.stmts.insert.run(
        device.device_id,
        device.workspace_id,
        device.display_name,
        device.nickname,
        JSON.stringify(device.custom_metadata),
        secretHash,
        toInt(device.can_remotely_lock),
        toInt(device.can_remotely_unlock),
        device.created_at,
      )
      return this.events.record([event])
    })
    this.ctx.onEvents(recorded)
  }

  async get(workspaceId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const row = this.stmts.byWorkspace.get(deviceId, workspaceId)
    return row && deviceFromRow(row)
  }

  async forAction(workspaceId: string, deviceId: string): Promise<ActionDevice | undefined> {
    const device = await this.forActions.read(deviceId, async () => {
      const row = this.stmts.forAction.get(deviceId)
      return row && actionDeviceFromRow(row)
    })
    return device?.workspace_id === workspaceId ? device : undefined
  }

  async getById(deviceId: string): Promise<DeviceRecord | undefined> {
    const values = this.stmts.byId.get(deviceId)
    return values && deviceFromRow(deviceRowOf(values))
  }

  async list(workspaceId: string, query: DeviceListQuery): Promise<Page<DeviceRecord>> {
    return listPage<DeviceRow, DeviceRecord>(this.ctx.db, {
      select: DEVICE_COLUMNS,
      from: 'devices',
      where: [
        equals('workspace_id', workspaceId),
        oneOf('device_id', query.deviceIds),
        compare('created_at', '<', query.createdBefore),
      ],
      order: 'asc',
      cursor: query.cursor,
      limit: query.limit,
      map: deviceFromRow,
    })
  }

  async update(workspaceId: string, deviceId: string, update: DeviceUpdate): Promise<boolean> {
    const sets: string[] = []
    const params: unknown[] = []
    for (const [column, value] of Object.entries(update)) {
      if (value === undefined) continue
      sets.push(`${column} = ?`)
      params.push(
        column === 'custom_metadata' ? JSON.stringify(value) : typeof value === 'boolean' ? toInt(value) : value,
      )
    }
    if (sets.length === 0) return (await this.get(workspaceId, deviceId)) !== undefined
    const result = await this.ctx.writes.run(() => {
      const updated = this.ctx.db
        .prepare(`UPDATE devices SET ${sets.join(', ')} WHERE device_id = ? AND workspace_id = ?`)
        .run(...params, deviceId, workspaceId)
      if (updated.changes > 0) this.forActions.forget(deviceId)
      return updated
    })
    return result.changes > 0
  }

  async delete(
    workspaceId: string,
    deviceId: string,
    event: EventDraft,
    settle: (attempt: AttemptRecord) => Transition,
  ): Promise<AttemptRecord[] | undefined> {
    const outcome = await this.ctx.writes.run(() => {
      if (!this.stmts.byWorkspace.get(deviceId, workspaceId)) return undefined
      const settled: AttemptRecord[] = []
      const recorded: LatchkeyEvent[] = []
      for (const attempt of this.attempts.pendingForDevice(deviceId)) {
        const transition = settle(attempt)
        recorded.push(...this.attempts.applyInTransaction(transition))
        if (transition.settled) settled.push(transition.attempt)
      }
      this.stmts.remove.run(deviceId)
      this.forActions.forget(deviceId)
      recorded.push(...this.events.record([event]))
      return { settled, recorded }
    })
    if (!outcome) return undefined
    this.ctx.onEvents(outcome.recorded)
    return outcome.settled
  }

  async secretHash(deviceId: string): Promise<string | undefined> {
    return this.stmts.secret.get(deviceId)?.secret_hash
  }

  async setSecretHash(workspaceId: string, deviceId: string, secretHash: string): Promise<boolean> {
    const result = await this.ctx.writes.run(() => this.stmts.setSecret.run(secretHash, deviceId, workspaceId))
    return result.changes > 0
  }

  async change(
    deviceId: string,
    decide: (device: DeviceRecord) => DeviceChange,
    options: WriteOptions & { dedupeKey?: string } = {},
  ): Promise<DeviceRecord | undefined> {
    const { dedupeKey } = options
    const outcome = await this.ctx.writes.run(() => {
      const values = this.stmts.byId.get(deviceId)
      if (!values) return undefined
      const device = deviceFromRow(deviceRowOf(values))
      // A QoS 1 redelivery of a device event carries the same event_id: record it once.
      if (dedupeKey !== undefined && this.stmts.seen.get(`${dedupeKey}#0`)) return { device, recorded: [] }
      const { patch, events } = decide(device)
      const props = { ...device.props, ...patch }
      if (changesSomething(device.props, props)) this.stmts.setProps.run(...propsParams(deviceId, props))
      if (props.online !== device.props.online) this.forActions.forget(deviceId)
      return { device: { ...device, props }, recorded: this.events.record(events, dedupeKey) }
    }, options.urgent)
    if (!outcome) return undefined
    this.ctx.onEvents(outcome.recorded)
    return outcome.device
  }

  async markAllOffline(): Promise<void> {
    await this.ctx.writes.run(() => {
      this.ctx.db.prepare('UPDATE devices SET online = 0 WHERE online = 1').run()
      this.forActions.clear()
    })
  }

  async countOnline(): Promise<number> {
    return this.stmts.online.get()?.n ?? 0
  }
}
