import { once } from 'node:events'
import { stat, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { describe, expect } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import {
  Fleet,
  formatStatusLine,
  provisionDevices,
  readCredentialsFile,
  type DeviceCredentials,
} from '../../simulator/index.js'
import { buildCommand, it } from './helpers.js'

/** A stand-in for `POST /devices/create` (docs/api.md) that records what it was sent. */
async function fakeConnectApi(mqttUrl = 'mqtt://broker.internal:1883') {
  const requests: Array<{ auth: string | undefined; body: unknown; path: string | undefined }> = []
  let inFlight = 0
  let maxInFlight = 0
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight += 1
    maxInFlight = Math.max(maxInFlight, inFlight)
    let raw = ''
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()))
    req.on('end', () => {
      requests.push({ auth: req.headers.authorization, body: JSON.parse(raw), path: req.url })
      const deviceId = randomUUID()
      const credentials = { url: mqttUrl, client_id: deviceId, username: deviceId, password: `pw-${deviceId}` }
      // Answer on a later turn so that requests overlap and the concurrency bound is observable.
      setImmediate(() => {
        inFlight -= 1
        res.setHeader('content-type', 'application/json')
        res.end(
          JSON.stringify({
            device: { device_id: deviceId },
            mqtt_credentials: { ...credentials, topic_root: 'x/' },
            ok: true,
          }),
        )
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests, maxInFlight: () => maxInFlight, close: () => server.close() }
}

describe('fleet provisioning', () => {
  it('creates devices through the Connect API with bounded concurrency', async ({ defer }) => {
    // Scenario: 40 devices, at most 8 requests at once, names numbered, key sent as Bearer, broker URL overridden.
    const api = await fakeConnectApi()
    defer(api.close)
    const creds = await provisionDevices({
      apiUrl: api.url,
      apiKey: 'seam_test',
      count: 40,
      namePrefix: 'door',
      concurrency: 8,
      mqttUrl: 'mqtt://127.0.0.1:1999',
    })
    expect(creds).toHaveLength(40)
    expect(new Set(creds.map((c) => c.device_id)).size).toBe(40)
    expect(creds.every((c) => c.url === 'mqtt://127.0.0.1:1999' && c.password.startsWith('pw-'))).toBe(true)
    expect(api.requests.every((r) => r.auth === 'Bearer seam_test' && r.path === '/devices/create')).toBe(true)
    expect(api.requests.map((r) => (r.body as { name: string }).name).sort()).toContain('door-40')
    expect(api.maxInFlight()).toBeGreaterThan(1)
    expect(api.maxInFlight()).toBeLessThanOrEqual(8)
  })

  it('fails with the HTTP status when the API refuses', async ({ defer }) => {
    // Scenario: a wrong key: the error names the status, not a JSON parse failure.
    const server = createServer((_req, res) => {
      res.statusCode = 401
      res.end(JSON.stringify({ error: { type: 'unauthorized', message: 'bad key' }, ok: false }))
    }).listen(0, '127.0.0.1')
    await once(server, 'listening')
    defer(() => server.close())
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    await expect(provisionDevices({ apiUrl, apiKey: 'seam_bad', count: 1 })).rejects.toThrow(/HTTP 401/)
  })

  it('saves credentials to an owner-only file and reads them back', async ({ defer }) => {
    // Scenario: --save then --from round-trips the credentials, and the file is mode 0600.
    const api = await fakeConnectApi()
    defer(api.close)
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-sim-'))
    defer(() => rm(dir, { recursive: true, force: true }))
    const path = join(dir, 'creds.json')
    const fleet = await Fleet.provision({ apiUrl: api.url, apiKey: 'seam_test', count: 3 })
    await fleet.saveCredentials(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readCredentialsFile(path)).toEqual(fleet.credentials)
    const reloaded = await Fleet.fromFile(path, { mqttUrl: 'mqtt://127.0.0.1:1' })
    expect(reloaded.locks.map((l) => l.deviceId)).toEqual(fleet.credentials.map((c) => c.device_id))
    expect(reloaded.credentials.every((c) => c.url === 'mqtt://127.0.0.1:1')).toBe(true)
  })
})

describe('fleet on a broker', () => {
  it('starts, counts per outcome, prints the status line and stops cleanly', async ({ mqtt, defer }) => {
    // Scenario: 4 locks, one overridden to jam; a command each; the status line sums outcomes; stop → all offline.
    const credentials: DeviceCredentials[] = Array.from({ length: 4 }, () => ({
      device_id: randomUUID(),
      url: mqtt.url,
      password: 'pw',
    }))
    const jammer = credentials[0]?.device_id
    const fleet = new Fleet({
      credentials,
      connectConcurrency: 2,
      behaviourFor: (id) => (id === jammer ? { jam: 1 } : undefined),
    })
    defer(() => fleet.stop())
    expect(await fleet.start()).toEqual([])
    expect(fleet.statusLine()).toBe('locks 4/4 online | commands 0 | acks success 0 error 0 silent 0 | dup 0')
    for (const { device_id } of credentials) await mqtt.send(device_id, buildCommand())
    await expect.poll(() => fleet.counters().acksSent.success + fleet.counters().acksSent.error).toBe(4)
    expect(fleet.statusLine()).toBe(
      'locks 4/4 online | commands 4 | acks success 3 error 1 (lock_jammed 1) silent 0 | dup 0',
    )
    expect(fleet.lock(jammer ?? '')?.state.jammed).toBe(true)
    await fleet.stop()
    for (const { device_id } of credentials) {
      await mqtt.waitFor((m) => m.topic === deviceTopic(device_id, 'status') && m.payload === 'offline')
    }
    expect(fleet.counters().online).toBe(0)
  })

  it('status line lists error types, accepted, invalid and events when present', () => {
    // Scenario: the formatter alone, with every optional part present.
    const line = formatStatusLine({
      locks: 2,
      online: 1,
      commandsReceived: 10,
      duplicatesReceived: 2,
      invalidReceived: 1,
      silenced: 4,
      acksSent: { accepted: 5, success: 3, error: 3, errorsByType: { lock_jammed: 2, door_open: 1 } },
      eventsSent: 7,
      connects: 1,
      disconnects: 0,
    })
    expect(line).toBe(
      'locks 1/2 online | commands 10 | acks success 3 error 3 (door_open 1, lock_jammed 2) accepted 5 silent 4 | dup 2 | invalid 1 | events 7',
    )
  })
})
