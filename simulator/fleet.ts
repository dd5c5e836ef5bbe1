import { chmod, readFile, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import type { BehaviourInput, RandomSource } from './behaviour.js'
import { addCounters, emptyCounters, type LockCounters } from './counters.js'
import { VirtualLock, type VirtualLockOptions } from './lock.js'

/** What a lock needs to connect; also the shape of a credentials file (a JSON array of these). */
export const DeviceCredentialsSchema = z.object({
  device_id: z.string().min(1),
  url: z.string().min(1),
  password: z.string().min(1),
})
export type DeviceCredentials = z.infer<typeof DeviceCredentialsSchema>
const CredentialsFileSchema = z.array(DeviceCredentialsSchema)

/** The part of the `/devices/create` answer (docs/api.md) the simulator reads. */
const CreateDeviceResponseSchema = z.object({
  device: z.object({ device_id: z.string().min(1) }),
  mqtt_credentials: z.object({ url: z.string().min(1), password: z.string().min(1) }),
})

export interface ProvisionOptions {
  /** Connect API base URL, e.g. http://127.0.0.1:3000 */
  apiUrl: string
  apiKey: string
  count: number
  /** Devices are named `${namePrefix}-1`, `${namePrefix}-2`, … Default `sim-lock`. */
  namePrefix?: string
  /** Parallel HTTP requests. Default 16. */
  concurrency?: number
  /** Replaces the broker URL the API hands out (e.g. when it advertises a hostname not reachable from here). */
  mqttUrl?: string
}

export interface FleetOptions {
  credentials: readonly DeviceCredentials[]
  /** Applies to every lock. */
  behaviour?: BehaviourInput
  /** Per-lock knobs, merged over `behaviour`. */
  behaviourFor?: (deviceId: string, index: number) => BehaviourInput | undefined
  random?: RandomSource
  now?: () => number
  /** Replaces every credential's URL. */
  mqttUrl?: string
  reconnectPeriodMs?: number
  startTimeoutMs?: number
  /** PEM CA certificate(s) every lock trusts for an mqtts:// broker. */
  ca?: string | Buffer
  /** Locks connecting at once in start(). Default 200. */
  connectConcurrency?: number
}

export interface StartFailure {
  deviceId: string
  error: Error
}

export interface FleetCounters extends LockCounters {
  locks: number
  online: number
}

/** Creates `count` devices through the Connect API, at most `concurrency` requests at a time. */
export async function provisionDevices(options: ProvisionOptions): Promise<DeviceCredentials[]> {
  const prefix = options.namePrefix ?? 'sim-lock'
  const names = Array.from({ length: options.count }, (_, i) => `${prefix}-${i + 1}`)
  return mapLimit(names, options.concurrency ?? 16, async (name) => {
    const created = await createDevice(options, name)
    return { ...created, url: options.mqttUrl ?? created.url }
  })
}

async function createDevice(options: ProvisionOptions, name: string): Promise<DeviceCredentials> {
  const url = new URL('devices/create', options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/`)
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${options.apiKey}` },
    body: JSON.stringify({ name }),
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`POST ${url.href} for ${name}: HTTP ${response.status}: ${text.slice(0, 500)}`)
  const parsed = CreateDeviceResponseSchema.safeParse(safeJson(text))
  if (!parsed.success) throw new Error(`POST ${url.href} for ${name}: unexpected response: ${text.slice(0, 500)}`)
  const { device, mqtt_credentials: creds } = parsed.data
  return { device_id: device.device_id, url: creds.url, password: creds.password }
}

/**
 * `--save FILE`: the locks saved in FILE by an earlier run are used again, and only the missing ones are created
 * (named after the ones already there), so that a re-run never makes duplicates. FILE is rewritten, mode 0600.
 */
export async function provisionSaved(
  options: ProvisionOptions & { save: string },
): Promise<{ credentials: DeviceCredentials[]; reused: number; created: number }> {
  let saved: DeviceCredentials[] = []
  try {
    saved = await readCredentialsFile(options.save)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const reused = saved.slice(0, options.count).map((c) => ({ ...c, url: options.mqttUrl ?? c.url }))
  const missing = options.count - reused.length
  const prefix = options.namePrefix ?? 'sim-lock'
  const names = Array.from({ length: missing }, (_, i) => `${prefix}-${saved.length + i + 1}`)
  const created = await mapLimit(names, options.concurrency ?? 16, async (name) => {
    const device = await createDevice(options, name)
    return { ...device, url: options.mqttUrl ?? device.url }
  })
  if (created.length > 0) await writeCredentialsFile(options.save, [...saved, ...created])
  return { credentials: [...reused, ...created], reused: reused.length, created: created.length }
}

export async function readCredentialsFile(path: string): Promise<DeviceCredentials[]> {
  const parsed = CredentialsFileSchema.safeParse(safeJson(await readFile(path, 'utf8')))
  if (!parsed.success) throw new Error(`${path}: not a credentials file:\n${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** Device secrets inside: readable by the owner only. */
export async function writeCredentialsFile(path: string, credentials: readonly DeviceCredentials[]): Promise<void> {
  await writeFile(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 })
  await chmod(path, 0o600)
}

/** N virtual locks sharing fleet-wide knobs; start/stop them together and read their summed counters. */
export class Fleet {
  readonly locks: readonly VirtualLock[]
  readonly credentials: readonly DeviceCredentials[]
  private readonly byId: Map<string, VirtualLock>
  private readonly connectConcurrency: number

  constructor(options: FleetOptions) {
    this.credentials = options.credentials.map((c) => ({ ...c, url: options.mqttUrl ?? c.url }))
    this.locks = this.credentials.map((c, i) => new VirtualLock(lockOptions(options, c, i)))
    this.byId = new Map(this.locks.map((lock) => [lock.deviceId, lock]))
    this.connectConcurrency = options.connectConcurrency ?? 200
  }

  static async provision(options: ProvisionOptions & Omit<FleetOptions, 'credentials'>): Promise<Fleet> {
    return new Fleet({ ...options, credentials: await provisionDevices(options) })
  }

  static async fromFile(path: string, options: Omit<FleetOptions, 'credentials'> = {}): Promise<Fleet> {
    return new Fleet({ ...options, credentials: await readCredentialsFile(path) })
  }

  lock(deviceId: string): VirtualLock | undefined {
    return this.byId.get(deviceId)
  }

  saveCredentials(path: string): Promise<void> {
    return writeCredentialsFile(path, this.credentials)
  }

  /** Connects every lock, `connectConcurrency` at a time; resolves with the ones that failed (empty = all up). */
  async start(): Promise<StartFailure[]> {
    const results = await mapLimit(this.locks, this.connectConcurrency, async (lock) => {
      try {
        await lock.start()
        return undefined
      } catch (err) {
        return { deviceId: lock.deviceId, error: err instanceof Error ? err : new Error(String(err)) }
      }
    })
    return results.filter((r): r is StartFailure => r !== undefined)
  }

  /** Stops every lock cleanly (retained `offline`, then DISCONNECT). */
  async stop(): Promise<void> {
    await mapLimit(this.locks, this.connectConcurrency, (lock) => lock.stop())
  }

  counters(): FleetCounters {
    const sum = emptyCounters()
    let online = 0
    for (const lock of this.locks) {
      addCounters(sum, lock.counters)
      if (lock.connected) online += 1
    }
    return { ...sum, locks: this.locks.length, online }
  }

  /** e.g. `locks 100/100 online | commands 1234 | acks success 1200 error 30 (lock_jammed 20, door_open 10) silent 4 | dup 2` */
  statusLine(): string {
    return formatStatusLine(this.counters())
  }
}

export function formatStatusLine(c: FleetCounters): string {
  const acks = c.acksSent
  const types = Object.entries(acks.errorsByType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${type} ${n}`)
  const parts = [
    `locks ${c.online}/${c.locks} online`,
    `commands ${c.commandsReceived}`,
    [
      `acks success ${acks.success} error ${acks.error}`,
      types.length > 0 ? ` (${types.join(', ')})` : '',
      acks.accepted > 0 ? ` accepted ${acks.accepted}` : '',
      ` silent ${c.silenced}`,
    ].join(''),
    `dup ${c.duplicatesReceived}`,
  ]
  if (c.invalidReceived > 0) parts.push(`invalid ${c.invalidReceived}`)
  if (c.eventsSent > 0) parts.push(`events ${c.eventsSent}`)
  return parts.join(' | ')
}

function lockOptions(options: FleetOptions, creds: DeviceCredentials, index: number): VirtualLockOptions {
  return {
    url: creds.url,
    deviceId: creds.device_id,
    password: creds.password,
    behaviour: { ...options.behaviour, ...options.behaviourFor?.(creds.device_id, index) },
    random: options.random,
    now: options.now,
    reconnectPeriodMs: options.reconnectPeriodMs,
    startTimeoutMs: options.startTimeoutMs,
    ...(options.ca ? { ca: options.ca } : {}),
  }
}

/** Runs fn over items with at most `limit` in flight; results keep the input order. Rejects on the first error. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let nextIndex = 0
  const worker = async (): Promise<void> => {
    while (nextIndex < items.length) {
      const index = nextIndex++
      results[index] = await fn(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
