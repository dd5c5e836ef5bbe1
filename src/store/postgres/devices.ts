import type { ActionDevice, DeviceStore, DeviceUpdate, NewDevice, WriteOptions } from '../../app/store.js'
import type { DeviceListQuery } from '../../domain/queries.js'
import type { Page } from '../../domain/page.js'
import type { AttemptRecord, Transition } from '../../domain/attempt.js'
import { changesSomething, type DeviceChange, type DeviceProps, type DeviceRecord } from '../../domain/device.js'
import type { EventDraft, LatchkeyEvent } from '../../domain/events.js'
import { decodeSeqCursor } from '../../domain/cursor.js'
import { toPage } from '../../domain/page.js'
import {
  ACTION_DEVICE_COLUMNS,
  actionDeviceFromRow,
  DEVICE_COLUMNS,
  deviceFromRow,
  type ActionDeviceRow,
  type DeviceRow,
} from '../rows.js'
import type { PgAttempts } from './attempts.js'
import { CACHE_CHANNEL, type PgCaches } from './cache.js'
import type { PgContext } from './context.js'
import { eventStatement, gatedStatement, type PgEvents } from './events.js'
import type { Cte, SqlStatement, Tx } from './database.js'
import type { Remembered, RememberedRow } from './remembered.js'

/** A device's properties written whole, without its WHERE; every change of a device's row raises its version. */
function propsUpdate(props: DeviceProps): SqlStatement {
  return {
    text: `UPDATE devices SET online = ?, locked = ?, door_open = ?, jammed = ?, battery_level = ?,
       firmware_version = ?, last_seen_at = ?, version = version + 1`,
    params: [
      props.online,
      props.locked,
      props.door_open,
      props.jammed,
      props.battery_level,
      props.firmware_version,
      props.last_seen_at,
    ],
  }
}

const UPDATABLE = new Set(['display_name', 'nickname', 'custom_metadata', 'can_remotely_lock', 'can_remotely_unlock'])

export class PgDevices implements DeviceStore {
  constructor(
    private readonly ctx: PgContext,
    private readonly events: PgEvents,
    private readonly attempts: PgAttempts,
    private readonly caches: PgCaches,
    /** The devices whose row this store changed last, as it wrote them (PgAttempts keeps their `locked` current). */
    private readonly remembered: Remembered<DeviceRecord>,
  ) {}

  /** Sends, with the transaction's commit, every instance's cue to forget the device (docs/scale-out.md#caches). */
  private forgetOnCommit(tx: Tx, deviceId: string): void {
    tx.write(`SELECT pg_notify('${CACHE_CHANNEL}', ?)`, [`device:${deviceId}`])
  }

  /** Cached per instance (PgCaches): every lock and unlock request reads it, and it rarely changes. */
  async forAction(workspaceId: string, deviceId: string): Promise<ActionDevice | undefined> {
    const device = await this.caches.devices.read(deviceId, async () => {
      const rows = await this.ctx.db.query<ActionDeviceRow>(
        `SELECT ${ACTION_DEVICE_COLUMNS} FROM devices WHERE device_id = ?`,
        [deviceId],
      )
      return rows[0] && actionDeviceFromRow(rows[0])
    })
    return device?.workspace_id === workspaceId ? device : undefined
  }

  async create({ device, secretHash, event }: NewDevice): Promise<void> {
    const recorded = await this.ctx.db.writes.run(async (tx) => {
      tx.write(
        `INSERT INTO devices (device_id, workspace_id, display_name, nickname, custom_metadata, secret_hash,
           can_remotely_lock, can_remotely_unlock, created_at, online) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false)`,
        [
          device.device_id,
          device.workspace_id,
          device.display_name,
          device.nickname,
          JSON.stringify(device.custom_metadata),
          secretHash,
          device.can_remotely_lock,
          device.can_remotely_unlock,
          device.created_at,
        ],
      )
      return this.events.record(tx, [event])
    })
    this.ctx.onEvents(recorded)
  }

  async get(workspaceId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const rows = await this.ctx.db.query<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ? AND workspace_id = ?`,
      [deviceId, workspaceId],
    )
    return rows[0] && deviceFromRow(rows[0])
  }

  async getById(deviceId: string): Promise<DeviceRecord | undefined> {
    const rows = await this.ctx.db.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ?`, [
      deviceId,
    ])
    return rows[0] && deviceFromRow(rows[0])
  }

  async list(workspaceId: string, query: DeviceListQuery): Promise<Page<DeviceRecord>> {
    const where = ['workspace_id = ?']
    const params: unknown[] = [workspaceId]
    if (query.deviceIds?.length) {
      where.push('device_id = ANY(?::text[])')
      params.push(query.deviceIds)
    }
    if (query.createdBefore !== undefined) {
      where.push('created_at < ?')
      params.push(query.createdBefore)
    }
    const after = decodeSeqCursor(query.cursor)
    if (after !== undefined) {
      where.push('seq > ?')
      params.push(after)
    }
    const rows = await this.ctx.db.query<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`,
      [...params, query.limit + 1],
    )
    return toPage(rows, query.limit, deviceFromRow)
  }

  async update(workspaceId: string, deviceId: string, update: DeviceUpdate): Promise<boolean> {
    const sets: string[] = []
    const params: unknown[] = []
    for (const [column, value] of Object.entries(update)) {
      if (value === undefined || !UPDATABLE.has(column)) continue
      sets.push(`${column} = ?`)
      params.push(column === 'custom_metadata' ? JSON.stringify(value) : value)
    }
    if (sets.length === 0) return (await this.get(workspaceId, deviceId)) !== undefined
    const changes = await this.ctx.db.writes.run(async (tx) => {
      const changed = await tx.exec(
        `UPDATE devices SET ${sets.join(', ')}, version = version + 1 WHERE device_id = ? AND workspace_id = ?`,
        [...params, deviceId, workspaceId],
      )
      this.remembered.forget(deviceId)
      if (changed > 0) this.forgetOnCommit(tx, deviceId)
      return changed
    })
    if (changes > 0) this.caches.devices.forget(deviceId)
    return changes > 0
  }

  async delete(
    workspaceId: string,
    deviceId: string,
    event: EventDraft,
    settle: (attempt: AttemptRecord) => Transition,
  ): Promise<AttemptRecord[] | undefined> {
    const outcome = await this.ctx.db.writes.run(async (tx) => {
      const found = await tx.query('SELECT 1 FROM devices WHERE device_id = ? AND workspace_id = ?', [
        deviceId,
        workspaceId,
      ])
      if (found.length === 0) return undefined
      const settled: AttemptRecord[] = []
      const recorded: LatchkeyEvent[] = []
      for (const attempt of await this.attempts.pendingForDevice(tx, deviceId)) {
        const transition = settle(attempt)
        recorded.push(...(await this.attempts.applyInTransaction(tx, transition)))
        if (transition.settled) settled.push(transition.attempt)
      }
      tx.write('DELETE FROM devices WHERE device_id = ?', [deviceId])
      this.remembered.forget(deviceId)
      this.forgetOnCommit(tx, deviceId)
      recorded.push(...(await this.events.record(tx, [event])))
      return { settled, recorded }
    })
    if (!outcome) return undefined
    this.caches.devices.forget(deviceId)
    this.ctx.onEvents(outcome.recorded)
    return outcome.settled
  }

  async secretHash(deviceId: string): Promise<string | undefined> {
    const rows = await this.ctx.db.query<{ secret_hash: string }>(
      'SELECT secret_hash FROM devices WHERE device_id = ?',
      [deviceId],
    )
    return rows[0]?.secret_hash
  }

  async setSecretHash(workspaceId: string, deviceId: string, secretHash: string): Promise<boolean> {
    const changes = await this.ctx.db.writes.run((tx) =>
      tx.exec('UPDATE devices SET secret_hash = ? WHERE device_id = ? AND workspace_id = ?', [
        secretHash,
        deviceId,
        workspaceId,
      ]),
    )
    return changes > 0
  }

  async change(
    deviceId: string,
    decide: (device: DeviceRecord) => DeviceChange,
    options: WriteOptions & { dedupeKey?: string } = {},
  ): Promise<DeviceRecord | undefined> {
    const { dedupeKey } = options
    const job = { urgent: options.urgent, keys: [`device:${deviceId}`] }
    const outcome = await this.ctx.db.writes.run(async (tx) => {
      // A device event with an id is checked against the events recorded: it reads the row.
      const known = dedupeKey === undefined && !tx.rerun ? this.remembered.get(deviceId) : undefined
      if (known) return this.changeIfUnchanged(tx, known, decide)
      const rows = await tx.query<DeviceRow & { version: number; seen: boolean }>(
        `SELECT ${DEVICE_COLUMNS}, version, EXISTS (SELECT 1 FROM events WHERE dedupe_key = ?) AS seen FROM devices
         WHERE device_id = ?`,
        [dedupeKey === undefined ? null : `${dedupeKey}#0`, deviceId],
      )
      const row = rows[0]
      if (!row) return undefined
      const device = deviceFromRow(row)
      // A QoS 1 redelivery of a device event carries the same event_id: record it once.
      if (row.seen) return { device, recorded: [], forget: false }
      const { patch, events } = decide(device)
      const props = { ...device.props, ...patch }
      if (props.online !== device.props.online) this.forgetOnCommit(tx, deviceId)
      const writes = changesSomething(device.props, props)
      const { text, params } = propsUpdate(props)
      const update: Cte[] = writes
        ? [{ name: 'dv', text: `${text} WHERE device_id = ?`, params: [...params, deviceId] }]
        : []
      // The change and its events as one statement.
      const part = await this.events.insertion(tx, events, dedupeKey)
      const statement = part ? eventStatement(update, part) : update[0]
      if (statement) tx.write(statement.text, statement.params)
      this.remembered.set(deviceId, writes ? { ...device, props } : device, writes ? row.version + 1 : row.version)
      return {
        device: { ...device, props },
        recorded: part?.events ?? [],
        forget: props.online !== device.props.online,
      }
    }, job)
    if (!outcome) return undefined
    if (outcome.forget) this.caches.devices.forget(deviceId)
    this.ctx.onEvents(outcome.recorded)
    return outcome.device
  }

  /**
   * A change decided on the device's row as this store last wrote it, written only if the row still carries the
   * version and `last_seen_at` that write left (docs/scale-out.md#attempts): the properties, the events with their
   * deliveries and the notifications in one statement; a change that writes nothing only checks the row. If the row
   * moved on, the job runs again and decides on the row as it is.
   */
  private async changeIfUnchanged(
    tx: Tx,
    { row: device, version }: RememberedRow<DeviceRecord>,
    decide: (device: DeviceRecord) => DeviceChange,
  ): Promise<{ device: DeviceRecord; recorded: LatchkeyEvent[]; forget: boolean }> {
    const { patch, events } = decide(device)
    const props = { ...device.props, ...patch }
    const changed = { ...device, props }
    const missed = () => this.remembered.forget(device.device_id)
    // An instance older than the version column changes the row without raising it, but not its last_seen_at.
    const current = 'device_id = ? AND version = ? AND last_seen_at IS NOT DISTINCT FROM ?'
    const key = [device.device_id, version, device.props.last_seen_at]
    if (!changesSomething(device.props, props) && events.length === 0) {
      tx.writeIfCurrent(`SELECT 1 FROM devices WHERE ${current}`, key, missed)
      return { device: changed, recorded: [], forget: false }
    }
    const update = propsUpdate(props)
    const gate = { name: 'dv', text: `${update.text} WHERE ${current} RETURNING 1`, params: [...update.params, ...key] }
    const part = await this.events.insertion(tx, events, undefined, gate.name)
    const forget = props.online !== device.props.online
    const notices = forget ? [{ text: `pg_notify('${CACHE_CHANNEL}', ?)`, params: [`device:${device.device_id}`] }] : []
    const statement = gatedStatement([gate], part, notices)
    tx.writeIfCurrent(statement.text, statement.params, missed)
    this.remembered.set(device.device_id, changed, version + 1)
    return { device: changed, recorded: part?.events ?? [], forget }
  }

  async countOnline(): Promise<number> {
    const rows = await this.ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM devices WHERE online')
    return Number(rows[0]?.n ?? 0)
  }

  async markAllOffline(): Promise<void> {
    await this.ctx.db.writes.run(async (tx) => {
      await tx.exec('UPDATE devices SET online = false, version = version + 1 WHERE online')
      this.remembered.clear()
      tx.write(`SELECT pg_notify('${CACHE_CHANNEL}', 'devices')`)
    })
    this.caches.devices.clear()
  }
}
