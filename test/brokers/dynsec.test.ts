import type { MqttClient } from 'mqtt'
import { randomUUID } from 'node:crypto'
import { describe, expect } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import {
  BrokerUnavailableError,
  connectDynsec,
  deviceRole,
  deviceRoleAcls,
  SERVICE_ROLE,
  type Dynsec,
} from '../../src/mqtt/dynsec.js'
import { toLatchkeyError } from '../../src/http/errors.js'
import { it as base } from '../helpers/latchkey.js'
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js'
import { closed, connectRaw } from '../helpers/mqtt.js'

/** A private mosquitto with dynsec, latchkey's provisioner connected to it as the admin, MQTT 5 clients. */
const it = base.extend<{
  mosquitto: Mosquitto
  dynsec: Dynsec
  connect: (username: string, password: string, clientId?: string) => Promise<MqttClient>
}>({
  mosquitto: async ({ defer }, use) => {
    const broker = await startMosquitto()
    defer(() => broker.stop())
    await use(broker)
  },
  dynsec: async ({ mosquitto, defer }, use) => {
    const dynsec = await connectDynsec({
      url: mosquitto.url,
      username: mosquitto.admin.username,
      password: mosquitto.admin.password,
      timeoutMs: 2000,
    })
    defer(() => dynsec.close())
    await use(dynsec)
  },
  connect: async ({ mosquitto, defer }, use) => {
    await use(async (username, password, clientId = username) => {
      const client = await connectRaw(mosquitto.url, { protocolVersion: 5, clientId, username, password })
      defer(() => client.end(true))
      return client
    })
  },
})

/** Publishes at QoS 1 and resolves with the PUBACK reason code (0 = accepted, 135 = not authorised). */
function publishCode(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) =>
    client.publish(topic, '{}', { qos: 1 }, (error, packet) => {
      const code = (error as { code?: number } | undefined)?.code ?? (packet as { reasonCode?: number })?.reasonCode
      if (error && code === undefined) return reject(error)
      resolve(code ?? 0)
    }),
  )
}

/** Subscribes and resolves with the SUBACK code for the filter (0/1 granted, 135 = not authorised). */
function subscribeCode(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      const refused = (error as { packet?: { granted?: number[] } } | undefined)?.packet?.granted?.[0]
      if (refused !== undefined) return resolve(refused)
      if (error) return reject(error)
      resolve(granted?.[0]?.qos ?? -1)
    }),
  )
}

const secret = () => randomUUID() + randomUUID()

describe('dynsec provisioning', () => {
  it('provision: the device connects with its secret and uses only its own topics', async ({ dynsec, connect }) => {
    // Scenario: provision(a) → a connects; publishes to its four uplinks; may not publish to b's topics, subscribe
    // to b's commands, use a wildcard, or take a shared subscription; may subscribe to its own commands.
    const a = randomUUID()
    const b = randomUUID()
    const pw = secret()
    await dynsec.provision(a, pw)
    await dynsec.provision(b, secret())
    const client = await connect(a, pw)
    for (const kind of ['acks', 'state', 'status', 'events'] as const)
      expect(await publishCode(client, deviceTopic(a, kind))).toBe(0)
    expect(await publishCode(client, deviceTopic(a, 'commands'))).toBe(135)
    expect(await publishCode(client, deviceTopic(b, 'acks'))).toBe(135)
    expect(await publishCode(client, deviceTopic(b, 'commands'))).toBe(135)
    expect(await subscribeCode(client, deviceTopic(a, 'commands'))).toBe(1)
    expect(await subscribeCode(client, deviceTopic(b, 'commands'))).toBe(135)
    expect(await subscribeCode(client, deviceTopic('+', 'commands'))).toBe(135)
    expect(await subscribeCode(client, deviceTopic(b, 'acks'))).toBe(135)
    expect(await subscribeCode(client, `$share/g/${deviceTopic(b, 'commands')}`)).toBe(135)
  })

  it('refuses a wrong password and a client id that is not the device id', async ({ dynsec, connect }) => {
    // Scenario: the client is bound to username = client id; a wrong secret or another client id → Not authorized.
    const a = randomUUID()
    const pw = secret()
    await dynsec.provision(a, pw)
    await expect(connect(a, 'not-the-secret')).rejects.toThrow(/Not authorized/i)
    await expect(connect(a, pw, randomUUID())).rejects.toThrow(/Not authorized/i)
  })

  it('rotate: the live session closes, the old secret is refused, the new one connects', async ({
    dynsec,
    connect,
  }) => {
    const a = randomUUID()
    const old = secret()
    await dynsec.provision(a, old)
    const client = await connect(a, old)
    const gone = closed(client)
    const fresh = secret()
    await dynsec.rotate(a, fresh)
    await gone
    await expect(connect(a, old)).rejects.toThrow(/Not authorized/i)
    expect((await connect(a, fresh)).connected).toBe(true)
  })

  it('remove: the live session closes, the device is refused, its role is gone', async ({ dynsec, connect }) => {
    const a = randomUUID()
    const pw = secret()
    await dynsec.provision(a, pw)
    const client = await connect(a, pw)
    const gone = closed(client)
    await dynsec.remove(a)
    await gone
    await expect(connect(a, pw)).rejects.toThrow(/Not authorized/i)
    const [role] = await dynsec.send([{ command: 'getRole', rolename: deviceRole(a) }])
    expect(role?.error).toBe('Role not found')
    // Removing again is not an error.
    await dynsec.remove(a)
  })

  it('provision twice converges: the last secret works, the role holds exactly the device ACL', async ({
    dynsec,
    connect,
  }) => {
    // Scenario: a retried create (or a device the broker already knows) → no error; the broker ends up as if
    // provisioned once with the latest secret, even when its role was changed by hand in between.
    const a = randomUUID()
    const first = secret()
    await dynsec.provision(a, first)
    await dynsec.send([
      { command: 'addRoleACL', rolename: deviceRole(a), acltype: 'subscribePattern', topic: '#', allow: true },
      { command: 'removeClientRole', username: a, rolename: deviceRole(a) },
    ])
    const second = secret()
    await dynsec.provision(a, second)
    await expect(connect(a, first)).rejects.toThrow(/Not authorized/i)
    const client = await connect(a, second)
    expect(await publishCode(client, deviceTopic(a, 'acks'))).toBe(0)
    const [role, got] = await dynsec.send([
      { command: 'getRole', rolename: deviceRole(a) },
      { command: 'getClient', username: a },
    ])
    const acls = (role?.data?.role as { acls: Array<{ acltype: string; topic: string; allow: boolean }> }).acls
    expect(acls.map(({ acltype, topic, allow }) => ({ acltype, topic, allow })).sort(byTopic)).toEqual(
      deviceRoleAcls(a).sort(byTopic),
    )
    expect((got?.data?.client as { roles: Array<{ rolename: string }> }).roles).toEqual([
      expect.objectContaining({ rolename: deviceRole(a) }),
    ])
  })

  it('ensureServiceRole: the service publishes commands and takes shared uplinks; a second run writes nothing and kicks nobody', async ({
    mosquitto,
    dynsec,
    connect,
  }) => {
    // Scenario: the dynsec admin alone may not publish commands nor subscribe `$share/…`; after ensureServiceRole
    // it may. Run again (another instance starting): nothing written, the service's live sessions stay up.
    const { username, password } = mosquitto.admin
    const a = randomUUID()
    const pw = secret()
    await dynsec.provision(a, pw)
    const before = await connect(username, password, 'before')
    expect(await publishCode(before, deviceTopic(a, 'commands'))).toBe(135)

    const first = await dynsec.ensureServiceRole()
    expect(first).toContain(`createRole ${SERVICE_ROLE}`)
    expect(first).toContain(`addClientRole ${username} ${SERVICE_ROLE}`)

    const service = await connect(username, password, 'latchkey-i1')
    let kicked = false
    service.on('close', () => (kicked = true))
    expect(await subscribeCode(service, `$share/latchkey/${deviceTopic('+', 'acks')}`)).toBe(1)
    expect(await subscribeCode(service, deviceTopic('+', 'status'))).toBe(1)
    expect(await publishCode(service, deviceTopic(a, 'commands'))).toBe(0)

    expect(await dynsec.ensureServiceRole()).toEqual([])
    expect(dynsec.connected).toBe(true)
    // A round trip on the service session after the second run: a kick would have closed it before this answer.
    const device = await connect(a, pw)
    const uplink = new Promise<string>((resolve) => service.once('message', (topic) => resolve(topic)))
    expect(await publishCode(device, deviceTopic(a, 'acks'))).toBe(0)
    expect(await uplink).toBe(deviceTopic(a, 'acks'))
    expect(kicked).toBe(false)
  })

  it('a frozen broker fails each call with BrokerUnavailableError within the timeout (HTTP 503)', async ({
    mosquitto,
    dynsec,
  }) => {
    // Scenario: mosquitto stops answering (SIGSTOP) → provision rejects after ~timeoutMs, not later, not never.
    mosquitto.pause()
    const started = performance.now()
    const error = await dynsec.provision(randomUUID(), secret()).catch((e: unknown) => e)
    const elapsed = performance.now() - started
    mosquitto.resume()
    expect(error).toBeInstanceOf(BrokerUnavailableError)
    expect(toLatchkeyError(error).status).toBe(503)
    expect(elapsed).toBeGreaterThanOrEqual(1900)
    expect(elapsed).toBeLessThan(4000)
  })

  it('a stopped broker fails each call with BrokerUnavailableError at once', async ({ mosquitto, dynsec }) => {
    // Scenario: mosquitto exits → the connection drops; calls fail at once rather than queue for later.
    await mosquitto.stop()
    const started = performance.now()
    await expect(dynsec.rotate(randomUUID(), secret())).rejects.toBeInstanceOf(BrokerUnavailableError)
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('reconcile removes clients of gone devices, reports missing ones, leaves the admin alone', async ({
    mosquitto,
    dynsec,
    connect,
  }) => {
    const [kept, gone1, gone2, missing] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
    const pw = secret()
    for (const id of [kept, gone1, gone2]) await dynsec.provision(id, pw)
    // A role left by a provision that stopped between its two commands.
    await dynsec.send([{ command: 'createRole', rolename: deviceRole(randomUUID()) }])

    const report = await dynsec.reconcile([kept, missing])
    expect(report.removed.sort()).toEqual([gone1, gone2].sort())
    expect(report.missing).toEqual([missing])
    await expect(connect(gone1, pw)).rejects.toThrow(/Not authorized/i)
    expect((await connect(kept, pw)).connected).toBe(true)
    const [clients, roles] = await dynsec.send([
      { command: 'listClients', verbose: false },
      { command: 'listRoles', verbose: false },
    ])
    expect((clients?.data?.clients as string[]).sort()).toEqual([kept, mosquitto.admin.username].sort())
    expect((roles?.data?.roles as string[]).filter((r) => r.startsWith('latchkey-device-'))).toEqual([deviceRole(kept)])
    expect(await dynsec.reconcile([kept])).toEqual({ removed: [], missing: [] })
    // With a predicate instead of the store's ids (the start-up form): orphans go, missing ones are not known.
    const late = randomUUID()
    await dynsec.provision(late, pw)
    expect(await dynsec.reconcile(async (id) => id === kept)).toEqual({ removed: [late], missing: undefined })
  })
})

function byTopic(a: { acltype: string; topic: string }, b: { acltype: string; topic: string }): number {
  return `${a.acltype} ${a.topic}`.localeCompare(`${b.acltype} ${b.topic}`)
}
