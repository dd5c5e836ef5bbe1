import { describe, expect } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { SECRET_HEADER } from '../../src/http/mqtt-auth/plugin.js'
import { createDevice, type CreatedDevice } from '../helpers/devices.js'
import { it as base, type StartOptions, type TestLatchkey } from '../helpers/latchkey.js'

/*
 * Contract tests of the MQTT_DEVICE_AUTH=http callbacks against a running latchkey, with request bodies as each
 * broker documents them: EMQX 5 (HTTP authenticator and authorizer), VerneMQ webhooks, mosquitto-go-auth (JSON).
 */
const SECRET = 'broker-callback-secret-0123456789'
const SERVICE = 'latchkey-orchestrator'
const SERVICE_PASSWORD = 'service-password-0123456789'

type Reply = { status: number; body: Record<string, unknown> & { [k: string]: unknown } }

const it = base.extend<{
  latchkeyOptions: StartOptions
  a: CreatedDevice
  b: CreatedDevice
  callback: (path: string, body: unknown, headers?: Record<string, string | null>) => Promise<Reply>
  refusals: (reason: string) => number
}>({
  latchkeyOptions: {
    env: { MQTT_DEVICE_AUTH: 'http', MQTT_AUTH_SECRET: SECRET, MQTT_SERVICE_PASSWORD: SERVICE_PASSWORD },
  },
  a: async ({ latchkey }, use) => use(await createDevice(latchkey, 'A')),
  b: async ({ latchkey }, use) => use(await createDevice(latchkey, 'B')),
  callback: async ({ latchkey }, use) => use((path, body, headers = {}) => post(latchkey, path, body, headers)),
  refusals: async ({ latchkey }, use) => use((reason) => latchkey.lk.metrics.get('mqtt_refusals_total', { reason })),
})

async function post(
  t: TestLatchkey,
  path: string,
  body: unknown,
  headers: Record<string, string | null> = {},
): Promise<Reply> {
  const all: Record<string, string | null> = { 'content-type': 'application/json', [SECRET_HEADER]: SECRET, ...headers }
  const res = await fetch(`${t.lk.httpUrl}/mqtt-auth${path}`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
    body: JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : {} }
}

describe('shared secret', () => {
  it('refuses a callback without the secret or with a wrong one: 401, counted', async ({ latchkey, a, callback }) => {
    // Scenario: a request that does not come from the configured broker is refused before it is read.
    const body = { username: a.deviceId, password: a.password, clientid: a.deviceId }
    expect((await callback('/emqx/authn', body, { [SECRET_HEADER]: null })).status).toBe(401)
    expect((await callback('/goauth/user', body, { [SECRET_HEADER]: `${SECRET}x` })).status).toBe(401)
    expect((await callback('/goauth/user', body, { [SECRET_HEADER]: SECRET.slice(0, -1) })).status).toBe(401)
    expect(latchkey.lk.metrics.get('mqtt_auth_secret_refused_total')).toBe(3)
    // The right secret as a header, or as ?secret= for a broker that cannot add headers.
    expect((await callback('/goauth/user', body)).body).toEqual({ Ok: true, Error: '' })
    const query = `/goauth/user?secret=${encodeURIComponent(SECRET)}`
    expect((await callback(query, body, { [SECRET_HEADER]: null })).body).toEqual({ Ok: true, Error: '' })
  })

  it('serves no callbacks in the default embedded mode', async ({ start }) => {
    // Scenario: MQTT_DEVICE_AUTH unset → /mqtt-auth does not exist.
    const t = await start()
    expect((await post(t, '/emqx/authn', {})).status).toBe(404)
  })
})

describe('EMQX 5', () => {
  it('authn: a device with its secret → allow with exactly its ACL, then deny everything else', async ({
    a,
    callback,
  }) => {
    const res = await callback('/emqx/authn', {
      username: a.deviceId,
      password: a.password,
      clientid: a.deviceId,
      peerhost: '127.0.0.1',
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      result: 'allow',
      is_superuser: false,
      acl: [
        ...['acks', 'state', 'status', 'events'].map((kind) => ({
          permission: 'allow',
          action: 'publish',
          topic: `latchkey/v1/devices/${a.deviceId}/${kind}`,
        })),
        { permission: 'allow', action: 'subscribe', topic: deviceTopic(a.deviceId, 'commands') },
        { permission: 'deny', action: 'all', topic: '#' },
      ],
    })
  })

  it.for<[string, (a: CreatedDevice, b: CreatedDevice) => Record<string, unknown>, string]>([
    ['a wrong password', (a) => ({ username: a.deviceId, password: 'nope', clientid: a.deviceId }), 'bad_credentials'],
    [
      "another device's secret",
      (a, b) => ({ username: a.deviceId, password: b.password, clientid: a.deviceId }),
      'bad_credentials',
    ],
    [
      'a client id that is not the username',
      (a, b) => ({ username: a.deviceId, password: a.password, clientid: b.deviceId }),
      'client_id_mismatch',
    ],
    ['no username', (a) => ({ username: '', password: a.password, clientid: a.deviceId }), 'anonymous'],
    ['no password', (a) => ({ username: a.deviceId, password: null, clientid: a.deviceId }), 'anonymous'],
  ])('authn: refuses %s', async ([, body, reason], { a, b, callback, refusals }) => {
    const res = await callback('/emqx/authn', body(a, b))
    expect(res).toEqual({ status: 200, body: { result: 'deny' } })
    expect(refusals(reason)).toBe(1)
  })

  it('authn: the service user, under its own client id, gets its commands and uplink filters', async ({ callback }) => {
    const res = await callback('/emqx/authn', {
      username: SERVICE,
      password: SERVICE_PASSWORD,
      clientid: 'latchkey-i1',
    })
    expect(res.body).toEqual({
      result: 'allow',
      is_superuser: false,
      acl: [
        { permission: 'allow', action: 'publish', topic: 'latchkey/v1/devices/+/commands' },
        ...['acks', 'state', 'status', 'events'].map((kind) => ({
          permission: 'allow',
          action: 'subscribe',
          topic: `eq latchkey/v1/devices/+/${kind}`,
        })),
        { permission: 'deny', action: 'all', topic: '#' },
      ],
    })
    expect((await callback('/emqx/authn', { username: SERVICE, password: 'wrong', clientid: 'x' })).body).toEqual({
      result: 'deny',
    })
  })

  it.for<[string, string, 'publish' | 'subscribe', (a: CreatedDevice, b: CreatedDevice) => string]>([
    ['publish its own acks', 'allow', 'publish', (a) => deviceTopic(a.deviceId, 'acks')],
    ['publish its own events', 'allow', 'publish', (a) => deviceTopic(a.deviceId, 'events')],
    ['publish to its own commands', 'deny', 'publish', (a) => deviceTopic(a.deviceId, 'commands')],
    ["publish another device's acks", 'deny', 'publish', (_a, b) => deviceTopic(b.deviceId, 'acks')],
    ['publish outside the contract', 'deny', 'publish', () => 'elsewhere/topic'],
    ['subscribe its own commands', 'allow', 'subscribe', (a) => deviceTopic(a.deviceId, 'commands')],
    ["subscribe another device's commands", 'deny', 'subscribe', (_a, b) => deviceTopic(b.deviceId, 'commands')],
    ['subscribe a wildcard', 'deny', 'subscribe', () => deviceTopic('+', 'commands')],
    ['subscribe everything', 'deny', 'subscribe', () => '#'],
    [
      'subscribe its own commands shared',
      'deny',
      'subscribe',
      (a) => `$share/g/${deviceTopic(a.deviceId, 'commands')}`,
    ],
  ])('authz: a device may %s → %s', async ([, result, action, topic], { a, b, callback }) => {
    const res = await callback('/emqx/authz', {
      username: a.deviceId,
      clientid: a.deviceId,
      topic: topic(a, b),
      action,
      qos: '1',
      retain: 'false',
    })
    expect(res).toEqual({ status: 200, body: { result } })
  })

  it('authz: the service publishes commands and subscribes the uplinks, plain or shared, nothing else', async ({
    a,
    callback,
  }) => {
    const ask = async (action: string, topic: string) =>
      (await callback('/emqx/authz', { username: SERVICE, clientid: 'latchkey-i1', topic, action })).body.result
    expect(await ask('publish', deviceTopic(a.deviceId, 'commands'))).toBe('allow')
    expect(await ask('publish', deviceTopic(a.deviceId, 'acks'))).toBe('deny')
    expect(await ask('subscribe', 'latchkey/v1/devices/+/acks')).toBe('allow')
    expect(await ask('subscribe', '$share/latchkey/latchkey/v1/devices/+/status')).toBe('allow')
    expect(await ask('subscribe', '$share//latchkey/v1/devices/+/status')).toBe('deny')
    expect(await ask('subscribe', '$share/latchkey/#')).toBe('deny')
    expect(await ask('subscribe', 'latchkey/v1/devices/+/commands')).toBe('deny')
  })

  it('authz: a deleted device, or a client id that is not the username, is refused', async ({
    latchkey,
    a,
    b,
    callback,
    refusals,
  }) => {
    const topic = deviceTopic(a.deviceId, 'acks')
    const mismatch = await callback('/emqx/authz', {
      username: a.deviceId,
      clientid: b.deviceId,
      topic,
      action: 'publish',
    })
    expect(mismatch.body.result).toBe('deny')
    expect(refusals('client_id_mismatch')).toBe(1)
    expect((await latchkey.call('/devices/delete', { device_id: a.deviceId })).status).toBe(200)
    const gone = await callback('/emqx/authz', { username: a.deviceId, clientid: a.deviceId, topic, action: 'publish' })
    expect(gone.body.result).toBe('deny')
  })

  it('a malformed body is refused in the broker shape and counted', async ({ callback, refusals }) => {
    expect((await callback('/emqx/authz', { username: 'x', action: 'delete', topic: 't' })).body).toEqual({
      result: 'deny',
    })
    expect((await callback('/emqx/authn', ['not', 'an', 'object'])).body).toEqual({ result: 'deny' })
    expect(refusals('malformed')).toBe(2)
  })
})

describe('VerneMQ webhooks', () => {
  const hook = (name: string) => ({ 'vernemq-hook': name })

  it('auth_on_register: ok with the secret; not_allowed for a wrong password or another client id', async ({
    a,
    b,
    callback,
  }) => {
    const register = (password: string, clientId: string) =>
      callback(
        '/vernemq',
        {
          peer_addr: '127.0.0.1',
          peer_port: 8888,
          username: a.deviceId,
          password,
          mountpoint: '',
          client_id: clientId,
          clean_session: false,
        },
        hook('auth_on_register'),
      )
    expect(await register(a.password, a.deviceId)).toEqual({ status: 200, body: { result: 'ok' } })
    const refused = { status: 200, body: { result: { error: 'not_allowed' } } }
    expect(await register('wrong', a.deviceId)).toEqual(refused)
    expect(await register(a.password, b.deviceId)).toEqual(refused)
    expect(await register(b.password, a.deviceId)).toEqual(refused)
  })

  it('auth_on_publish (base64 payload): its own topics ok, another device not_allowed', async ({ a, b, callback }) => {
    const publish = (topic: string) =>
      callback(
        '/vernemq',
        {
          username: a.deviceId,
          client_id: a.deviceId,
          mountpoint: '',
          qos: 1,
          topic,
          payload: Buffer.from('{"state":"locked"}').toString('base64'),
          retain: false,
        },
        hook('auth_on_publish'),
      )
    expect((await publish(deviceTopic(a.deviceId, 'state'))).body).toEqual({ result: 'ok' })
    expect((await publish(deviceTopic(b.deviceId, 'state'))).body).toEqual({ result: { error: 'not_allowed' } })
    expect((await publish(deviceTopic(a.deviceId, 'commands'))).body).toEqual({ result: { error: 'not_allowed' } })
  })

  it.for([
    ['auth_on_subscribe', 128],
    ['auth_on_subscribe_m5', 135],
  ] as const)(
    '%s: refused filters come back with qos %i, granted ones keep theirs',
    async ([name, refused], { a, b, callback }) => {
      const own = deviceTopic(a.deviceId, 'commands')
      const res = await callback(
        '/vernemq',
        {
          client_id: a.deviceId,
          mountpoint: '',
          username: a.deviceId,
          topics: [
            { topic: own, qos: 1 },
            { topic: deviceTopic(b.deviceId, 'commands'), qos: 1 },
            { topic: deviceTopic('+', 'commands'), qos: 0 },
            { topic: `$share/g/${own}`, qos: 1 },
          ],
        },
        hook(name),
      )
      expect(res).toEqual({
        status: 200,
        body: {
          result: 'ok',
          topics: [
            { topic: own, qos: 1 },
            { topic: deviceTopic(b.deviceId, 'commands'), qos: refused },
            { topic: deviceTopic('+', 'commands'), qos: refused },
            { topic: `$share/g/${own}`, qos: refused },
          ],
        },
      })
    },
  )

  it('the service subscribes its shared uplinks; an unknown hook is a 400', async ({ callback }) => {
    const topics = [
      { topic: '$share/latchkey/latchkey/v1/devices/+/acks', qos: 1 },
      { topic: 'latchkey/v1/devices/+/events', qos: 1 },
      { topic: '#', qos: 1 },
    ]
    const res = await callback(
      '/vernemq',
      { client_id: 'latchkey-i2', mountpoint: '', username: SERVICE, topics },
      hook('auth_on_subscribe'),
    )
    expect(res.body.topics).toEqual([topics[0], topics[1], { topic: '#', qos: 128 }])
    expect((await callback('/vernemq', {}, hook('on_deliver'))).status).toBe(400)
    expect((await callback('/vernemq', {}, {})).status).toBe(400)
  })
})

describe('mosquitto-go-auth HTTP backend (JSON)', () => {
  it('user: Ok for the device secret; refusals name their reason', async ({ a, b, callback }) => {
    const user = (password: string, clientid: string) =>
      callback('/goauth/user', { username: a.deviceId, password, clientid })
    expect((await user(a.password, a.deviceId)).body).toEqual({ Ok: true, Error: '' })
    expect((await user('wrong', a.deviceId)).body).toEqual({ Ok: false, Error: 'bad_credentials' })
    expect((await user(a.password, b.deviceId)).body).toEqual({ Ok: false, Error: 'client_id_mismatch' })
    expect((await callback('/goauth/superuser', { username: a.deviceId })).body).toEqual({
      Ok: false,
      Error: 'not allowed',
    })
  })

  it.for<[string, boolean, number, (a: CreatedDevice, b: CreatedDevice) => string]>([
    ['read its own commands', true, 1, (a) => deviceTopic(a.deviceId, 'commands')],
    ["read another device's commands", false, 1, (_a, b) => deviceTopic(b.deviceId, 'commands')],
    ['write its own acks', true, 2, (a) => deviceTopic(a.deviceId, 'acks')],
    ["write another device's acks", false, 2, (_a, b) => deviceTopic(b.deviceId, 'acks')],
    ['read and write its own commands', false, 3, (a) => deviceTopic(a.deviceId, 'commands')],
    ['subscribe its own commands', true, 4, (a) => deviceTopic(a.deviceId, 'commands')],
    ['subscribe a wildcard', false, 4, () => 'latchkey/v1/devices/#'],
    ['subscribe its commands shared', false, 4, (a) => `$share/g/${deviceTopic(a.deviceId, 'commands')}`],
    ['use an unknown access level', false, 8, (a) => deviceTopic(a.deviceId, 'acks')],
  ])('acl: a device may %s → %s (acc %i)', async ([, ok, acc, topic], { a, b, callback }) => {
    const res = await callback('/goauth/acl', { username: a.deviceId, clientid: a.deviceId, topic: topic(a, b), acc })
    expect(res.status).toBe(200)
    expect(res.body.Ok).toBe(ok)
  })

  it('acl: the service subscribes `$share/…` uplinks (mosquitto passes the whole filter) and reads them', async ({
    a,
    callback,
  }) => {
    const acl = async (topic: string, acc: number) =>
      (await callback('/goauth/acl', { username: SERVICE, clientid: 'latchkey-i1', topic, acc })).body.Ok
    expect(await acl('$share/latchkey/latchkey/v1/devices/+/acks', 4)).toBe(true)
    expect(await acl(deviceTopic(a.deviceId, 'acks'), 1)).toBe(true)
    expect(await acl(deviceTopic(a.deviceId, 'commands'), 2)).toBe(true)
    expect(await acl(deviceTopic(a.deviceId, 'commands'), 1)).toBe(false)
  })
})
