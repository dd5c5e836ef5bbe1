import mqtt, { type MqttClient } from 'mqtt'
import { randomUUID } from 'node:crypto'
import { deviceAcl, serviceAcl } from '../../broker/acl.js'
import { UnavailableError } from '../domain/errors.js'

/**
 * Device provisioning for `MQTT_DEVICE_AUTH=dynsec` (docs/scale-out.md): latchkey, as a dynamic-security admin,
 * keeps mosquitto's clients and roles in step with its devices through the `$CONTROL/dynamic-security/v1` API.
 *
 * - One role per device holding exactly that device's literal topics (mosquitto 2.0 has no `%u` substitution) and
 *   one client, username = client id = device id, password = the device secret. The broker stores a PBKDF2 hash of
 *   it; latchkey keeps only its SHA-256, so the plaintext is pushed when it is known: at creation and rotation.
 * - Every command carries a `correlationData` and its answer is awaited with a timeout; a broker that does not
 *   answer (down, frozen, unreachable) fails the call with BrokerUnavailableError (503).
 * - Writes are idempotent: a second `provision` of the same device converges instead of failing.
 */

export const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1'
export const RESPONSE_TOPIC = '$CONTROL/dynamic-security/v1/response'
/** The role latchkey grants its own service client (publish commands, shared uplink subscriptions). */
export const SERVICE_ROLE = 'latchkey-service'
const DEVICE_ROLE_PREFIX = 'latchkey-device-'

export function deviceRole(deviceId: string): string {
  return `${DEVICE_ROLE_PREFIX}${deviceId}`
}

/** The broker did not answer in time, or the connection to it is down. The API answers 503. */
export class BrokerUnavailableError extends UnavailableError {
  override readonly name = 'BrokerUnavailableError'
}

/** The broker answered a command with an error (other than the ones provisioning converges from). */
export class DynsecCommandError extends Error {
  constructor(
    readonly command: string,
    readonly brokerError: string,
  ) {
    super(`dynamic security ${command}: ${brokerError}`)
    this.name = 'DynsecCommandError'
  }
}

export type AclType =
  | 'publishClientSend'
  | 'publishClientReceive'
  | 'subscribeLiteral'
  | 'subscribePattern'
  | 'unsubscribeLiteral'
  | 'unsubscribePattern'

export interface Acl {
  acltype: AclType
  topic: string
  allow: boolean
  priority?: number
}

type Command = { command: string } & Record<string, unknown>
interface Response {
  command: string
  error?: string
  data?: Record<string, unknown>
}

/** The ACLs of a device's role: publish its four uplinks, subscribe to and receive its commands, all literal. */
export function deviceRoleAcls(deviceId: string): Acl[] {
  const acl = deviceAcl(deviceId)
  return [
    ...acl.publish.map((topic): Acl => ({ acltype: 'publishClientSend', topic, allow: true })),
    ...acl.subscribe.flatMap((topic): Acl[] => [
      { acltype: 'subscribeLiteral', topic, allow: true },
      { acltype: 'publishClientReceive', topic, allow: true },
    ]),
  ]
}

/**
 * The ACLs of the service role: publish every device's commands; subscribe to the uplink filters plain and shared
 * (mosquitto checks a shared subscription against the whole `$share/<group>/<filter>` string), and receive them.
 */
export function serviceRoleAcls(): Acl[] {
  const acl = serviceAcl()
  return [
    { acltype: 'publishClientSend', topic: acl.publish, allow: true },
    ...acl.subscribe.flatMap((filter): Acl[] => [
      { acltype: 'subscribePattern', topic: filter, allow: true },
      { acltype: 'subscribePattern', topic: `$share/+/${filter}`, allow: true },
      { acltype: 'publishClientReceive', topic: filter, allow: true },
    ]),
  ]
}

export interface DynsecOptions {
  url: string
  /** The dynamic-security admin (`mosquitto_ctrl dynsec init FILE USER PASS`), also latchkey's service user. */
  username: string
  password: string
  /** How long each command's answer is awaited (default 5000 ms). */
  timeoutMs?: number
  /** Default `<username>-dynsec-<random>`: one connection per instance, beside the orchestrator's. */
  clientId?: string
  /** Unreadable answers and connection errors; nothing here throws out of an event handler. */
  onError?: (error: unknown, context: string) => void
}

export interface ReconcileReport {
  /** Broker clients of devices that no longer exist; deleted with their roles. */
  removed: string[]
  /**
   * Devices the broker lacks: only hashes are stored, so each needs `rotate_credentials`. Known only when the
   * store's device ids were given, not a predicate.
   */
  missing: string[] | undefined
}

/** Whether a device exists in the store. */
export type DeviceExists = (deviceId: string) => Promise<boolean>

export interface Dynsec {
  readonly connected: boolean
  /** Creates (or converges) the device's role and client; the device can connect with `secret` afterwards. */
  provision(deviceId: string, secret: string): Promise<void>
  /** Sets a new password; mosquitto closes the device's live session. */
  rotate(deviceId: string, secret: string): Promise<void>
  /** Deletes the device's client (closing its session) and role; nothing to delete is fine. */
  remove(deviceId: string): Promise<void>
  /** Grants the service client its role, writing only what is missing; returns what it wrote. */
  ensureServiceRole(serviceUsername?: string): Promise<string[]>
  /** Deletes broker clients of gone devices; reports devices the broker lacks (given the store's ids). */
  reconcile(inStore: Iterable<string> | DeviceExists): Promise<ReconcileReport>
  /** Sends raw commands and returns their answers in order (for tests and operators). */
  send(commands: Command[]): Promise<Response[]>
  close(): Promise<void>
}

function sameAcl(a: Acl, b: Acl): boolean {
  return a.acltype === b.acltype && a.topic === b.topic && a.allow === b.allow
}

/** Connects as the admin, subscribes to the answers, and resolves once it can send commands. */
export async function connectDynsec(options: DynsecOptions): Promise<Dynsec> {
  const timeoutMs = options.timeoutMs ?? 5000
  const onError = options.onError ?? (() => {})
  const prefix = randomUUID()
  let sequence = 0
  const pending = new Map<
    string,
    { resolve: (r: Response) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >()

  const client: MqttClient = mqtt.connect(options.url, {
    protocolVersion: 5,
    clientId: options.clientId ?? `${options.username}-dynsec-${prefix.slice(0, 8)}`,
    username: options.username,
    password: options.password,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: timeoutMs,
    manualConnect: true,
  })
  client.on('message', (topic, payload) => {
    if (topic !== RESPONSE_TOPIC) return
    let responses: unknown
    try {
      responses = (JSON.parse(payload.toString()) as { responses?: unknown }).responses
    } catch (error) {
      return onError(error, 'dynsec response')
    }
    if (!Array.isArray(responses)) return
    for (const response of responses as Array<Response & { correlationData?: unknown }>) {
      // Every instance receives every answer: only our own correlation ids resolve anything.
      const waiting = typeof response?.correlationData === 'string' ? pending.get(response.correlationData) : undefined
      if (!waiting) continue
      pending.delete(response.correlationData as string)
      clearTimeout(waiting.timer)
      waiting.resolve(response)
    }
  })
  client.on('error', (error) => onError(error, 'dynsec connection'))
  // A lost connection loses the answers too: fail what is waiting at once rather than at its timeout.
  client.on('close', () => {
    for (const [id, waiting] of pending) {
      clearTimeout(waiting.timer)
      pending.delete(id)
      waiting.reject(new BrokerUnavailableError('The connection to the MQTT broker was lost'))
    }
  })

  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => {
      client.off('connect', connected)
      client.end(true)
      reject(new BrokerUnavailableError(`dynamic security: cannot connect to ${options.url}: ${error.message}`))
    }
    const connected = () => {
      client.off('error', fail)
      client.subscribe(RESPONSE_TOPIC, { qos: 0 }, (error, granted) => {
        const code = granted?.[0]?.qos
        if (error || code === undefined || code >= 128) {
          client.end(true)
          return reject(new Error(`dynamic security: ${options.username} may not subscribe to ${RESPONSE_TOPIC}`))
        }
        resolve()
      })
    }
    client.once('error', fail)
    client.once('connect', connected)
    client.connect()
  })

  function unavailable(what: string): BrokerUnavailableError {
    return new BrokerUnavailableError(`The MQTT broker did not answer ${what} within ${timeoutMs} ms`)
  }

  /**
   * One publish carrying every command; resolves with the answers in order. QoS 0 and no offline queue: a command
   * that cannot be sent now fails now, rather than running on the broker after its caller gave up.
   */
  async function send(commands: Command[]): Promise<Response[]> {
    const what = commands.map((c) => c.command).join(', ')
    if (!client.connected) throw unavailable(what)
    const tagged = commands.map((command) => ({ ...command, correlationData: `${prefix}:${++sequence}` }))
    const answers = tagged.map(
      (command) =>
        new Promise<Response>((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(command.correlationData)
            reject(unavailable(what))
          }, timeoutMs)
          pending.set(command.correlationData, { resolve, reject, timer })
        }),
    )
    client.publish(CONTROL_TOPIC, JSON.stringify({ commands: tagged }), { qos: 0 }, (error) => {
      if (error) onError(error, 'dynsec publish')
    })
    const settled = await Promise.allSettled(answers)
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    return settled.map((s) => (s as PromiseFulfilledResult<Response>).value)
  }

  function reconnected(): Promise<void> {
    if (client.connected) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('connect', done)
        reject(unavailable('a reconnect'))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        resolve()
      }
      client.once('connect', done)
    })
  }

  async function one(command: Command, tolerated: string[] = []): Promise<Response> {
    const [response] = await send([command])
    if (!response) throw unavailable(command.command)
    if (response.error && !tolerated.includes(response.error))
      throw new DynsecCommandError(command.command, response.error)
    return response
  }

  async function getRoleAcls(rolename: string): Promise<Acl[] | undefined> {
    const response = await one({ command: 'getRole', rolename }, ['Role not found'])
    if (response.error) return undefined
    return ((response.data?.role as { acls?: Acl[] } | undefined)?.acls ?? []).map((a) => ({
      acltype: a.acltype,
      topic: a.topic,
      allow: a.allow,
    }))
  }

  async function getClientRoles(username: string): Promise<string[] | undefined> {
    const response = await one({ command: 'getClient', username }, ['Client not found'])
    if (response.error) return undefined
    const found = response.data?.client as { roles?: Array<{ rolename: string }> } | undefined
    return (found?.roles ?? []).map((r) => r.rolename)
  }

  /** Makes the role hold at least `acls` (and, when `exact`, nothing else); returns the commands it sent. */
  async function ensureRole(rolename: string, acls: Acl[], exact: boolean): Promise<string[]> {
    let current = await getRoleAcls(rolename)
    if (current === undefined) {
      const created = await one({ command: 'createRole', rolename, acls }, ['Role already exists'])
      if (!created.error) return [`createRole ${rolename}`]
      // Created meanwhile by another instance: converge on what it wrote.
      current = (await getRoleAcls(rolename)) ?? []
    }
    const writes: Command[] = []
    for (const acl of acls)
      if (!current.some((c) => sameAcl(c, acl))) writes.push({ command: 'addRoleACL', rolename, ...acl })
    if (exact)
      for (const acl of current)
        if (!acls.some((a) => sameAcl(a, acl)))
          writes.push({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic })
    if (writes.length === 0) return []
    for (const response of await send(writes))
      if (response.error && response.error !== 'ACL with this topic already exists')
        throw new DynsecCommandError(response.command, response.error)
    return writes.map((w) => `${w.command} ${rolename} ${String(w.acltype)} ${String(w.topic)}`)
  }

  async function provision(deviceId: string, secret: string): Promise<void> {
    const rolename = deviceRole(deviceId)
    const [role, created] = await send([
      { command: 'createRole', rolename, acls: deviceRoleAcls(deviceId) },
      {
        command: 'createClient',
        username: deviceId,
        clientid: deviceId,
        password: secret,
        roles: [{ rolename }],
      },
    ])
    if (role?.error && role.error !== 'Role already exists') throw new DynsecCommandError('createRole', role.error)
    if (created?.error && created.error !== 'Client already exists')
      throw new DynsecCommandError('createClient', created.error)
    // A second provision of the same device: converge the role's ACLs, the password, the client id and the role.
    if (role?.error) await ensureRole(rolename, deviceRoleAcls(deviceId), true)
    if (created?.error) {
      await one({ command: 'setClientPassword', username: deviceId, password: secret })
      await one({ command: 'setClientId', username: deviceId, clientid: deviceId })
      const roles = (await getClientRoles(deviceId)) ?? []
      if (!roles.includes(rolename)) await one({ command: 'addClientRole', username: deviceId, rolename })
    }
  }

  async function remove(deviceId: string): Promise<void> {
    const [client, role] = await send([
      { command: 'deleteClient', username: deviceId },
      { command: 'deleteRole', rolename: deviceRole(deviceId) },
    ])
    if (client?.error && client.error !== 'Client not found') throw new DynsecCommandError('deleteClient', client.error)
    if (role?.error && role.error !== 'Role not found') throw new DynsecCommandError('deleteRole', role.error)
  }

  return {
    get connected() {
      return client.connected
    },
    provision,
    async rotate(deviceId, secret) {
      await one({ command: 'setClientPassword', username: deviceId, password: secret })
    },
    remove,
    /*
     * Reads before it writes: a role change disconnects every client holding the role, and adding a role to a
     * client disconnects that client, so instances starting together must find nothing to do and kick nobody.
     */
    async ensureServiceRole(serviceUsername = options.username) {
      const written: string[] = []
      const step = async () => {
        written.push(...(await ensureRole(SERVICE_ROLE, serviceRoleAcls(), false)))
        const roles = await getClientRoles(serviceUsername)
        if (roles === undefined)
          throw new DynsecCommandError('getClient', `service client ${serviceUsername} not found`)
        if (roles.includes(SERVICE_ROLE)) return
        written.push(`addClientRole ${serviceUsername} ${SERVICE_ROLE}`)
        await one({ command: 'addClientRole', username: serviceUsername, rolename: SERVICE_ROLE, priority: -1 })
      }
      // The first grant to the service user closes this very connection (the admin is the service user), and its
      // answer is lost with it: reconnect and read again, which then finds the grant in place. Bounded.
      for (let round = 1; ; round++) {
        try {
          await step()
          return written
        } catch (error) {
          if (!(error instanceof BrokerUnavailableError) || round === 3) throw error
          await reconnected()
        }
      }
    },
    async reconcile(inStore) {
      const known = typeof inStore === 'function' ? undefined : new Set(inStore)
      const exists = async (id: string) => (known ? known.has(id) : await (inStore as DeviceExists)(id))
      const [clients, roles] = await send([
        { command: 'listClients', verbose: true, count: -1 },
        { command: 'listRoles', verbose: false, count: -1 },
      ])
      if (clients?.error) throw new DynsecCommandError('listClients', clients.error)
      if (roles?.error) throw new DynsecCommandError('listRoles', roles.error)
      const listed = (clients?.data?.clients ?? []) as Array<{ username: string; roles?: Array<{ rolename: string }> }>
      // A device client is one holding its own device role: the admin, the service and anything else is left alone.
      const deviceClients = listed
        .filter((c) => (c.roles ?? []).some((r) => r.rolename === deviceRole(c.username)))
        .map((c) => c.username)
      const onBroker = new Set(deviceClients)
      const removed: string[] = []
      for (const deviceId of deviceClients) {
        if (await exists(deviceId)) continue
        await remove(deviceId)
        removed.push(deviceId)
      }
      // Roles left behind by a provision that stopped half-way.
      const roleNames = (roles?.data?.roles ?? []) as unknown[]
      for (const name of roleNames) {
        if (typeof name !== 'string' || !name.startsWith(DEVICE_ROLE_PREFIX)) continue
        const deviceId = name.slice(DEVICE_ROLE_PREFIX.length)
        if (!onBroker.has(deviceId) && !(await exists(deviceId)))
          await one({ command: 'deleteRole', rolename: name }, ['Role not found'])
      }
      return { removed, missing: known ? [...known].filter((id) => !onBroker.has(id)) : undefined }
    },
    send,
    async close() {
      for (const [id, waiting] of pending) {
        clearTimeout(waiting.timer)
        pending.delete(id)
        waiting.reject(new BrokerUnavailableError('The connection to the MQTT broker was closed'))
      }
      await client.endAsync(true)
    },
  }
}
