import { SeamHttp } from '@seamapi/http/connect'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import { Agent, fetch } from 'undici'
import { describe, expect, test, vi } from 'vitest'
import { VirtualLock } from '../../simulator/index.js'
import { startChild, type ChildLatchkey } from '../helpers/child.js'
import { ADMIN_KEY, startTestLatchkey, tempDataDir, type TestLatchkey } from '../helpers/latchkey.js'
import { connectRaw } from '../helpers/mqtt.js'

/**
 * TLS end to end (docs/operations.md, "TLS"): a CA and two server certificates are made with the openssl CLI at
 * test time; latchkey serves HTTPS and MQTTS with the plain device listener off; the simulator and the Seam SDK
 * trust the CA, a client that does not is refused; a reload swaps the certificate under a connected lock.
 */

interface Certs {
  dir: string
  ca: Buffer
  /** The files latchkey reads (TLS_CERT_FILE, TLS_KEY_FILE). */
  certFile: string
  keyFile: string
  /** A second pair from the same CA, CN=renewed, to copy over the first. */
  renewed: { cert: string; key: string }
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' })
}

function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-tls-'))
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(
    dir,
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=latchkey test CA',
  )
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const name of ['first', 'renewed']) {
    openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`)
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      'san.cnf',
    )
  }
  copyFileSync(join(dir, 'first.pem'), join(dir, 'server.pem'))
  copyFileSync(join(dir, 'first.key'), join(dir, 'server.key'))
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.pem')),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    renewed: { cert: join(dir, 'renewed.pem'), key: join(dir, 'renewed.key') },
  }
}

interface TlsLatchkey {
  t: TestLatchkey
  certs: Certs
  /** POST to the Connect API over HTTPS, trusting the test CA. */
  call: (path: string, body?: unknown) => Promise<{ status: number; body: any }> // eslint-disable-line @typescript-eslint/no-explicit-any
  /** A simulated lock trusting the CA, stopped at teardown. */
  lock: (device: { url: string; deviceId: string; password: string }) => VirtualLock
}

const it = test.extend<{
  certs: Certs
  lk: TlsLatchkey
  child: (env: Record<string, string>) => Promise<ChildLatchkey>
}>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  certs: async ({}, use) => {
    const certs = makeCerts()
    await use(certs)
    rmSync(certs.dir, { recursive: true, force: true })
  },
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  child: async ({}, use) => {
    const children: ChildLatchkey[] = []
    const dirs: string[] = []
    await use(async (env) => {
      const dataDir = tempDataDir()
      dirs.push(dataDir)
      const child = await startChild({ DATA_DIR: dataDir, MQTT_PORT: '0', ADMIN_API_KEY: ADMIN_KEY, ...env })
      children.push(child)
      return child
    })
    for (const child of children) await child.kill('SIGKILL')
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  },
  lk: async ({ certs }, use) => {
    const t = await startTestLatchkey({
      env: {
        TLS_CERT_FILE: certs.certFile,
        TLS_KEY_FILE: certs.keyFile,
        MQTTS_PORT: '0',
        MQTT_PLAINTEXT: 'false',
      },
    })
    const dispatcher = new Agent({ connect: { ca: certs.ca } })
    const locks: VirtualLock[] = []
    await use({
      t,
      certs,
      async call(path, body = {}) {
        const res = await fetch(`${t.lk.httpUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${t.apiKey}` },
          body: JSON.stringify(body),
          dispatcher,
        })
        return { status: res.status, body: await res.json() }
      },
      lock(device) {
        const lock = new VirtualLock({ ...device, ca: certs.ca, reconnectPeriodMs: 50 })
        locks.push(lock)
        return lock
      },
    })
    for (const lock of locks) await lock.stop().catch(() => {})
    await dispatcher.close()
    await t.close()
  },
})

async function createDevice(lk: TlsLatchkey) {
  const res = await lk.call('/devices/create', { name: 'tls lock' })
  expect(res.status).toBe(200)
  const creds = res.body.mqtt_credentials
  return { url: creds.url as string, deviceId: creds.username as string, password: creds.password as string }
}

async function waitOnline(lk: TlsLatchkey, deviceId: string): Promise<void> {
  await vi.waitFor(
    async () => {
      const res = await lk.call('/devices/get', { device_id: deviceId })
      if (res.body.device.properties.online !== true) throw new Error('not online yet')
    },
    { timeout: 10_000, interval: 20 },
  )
}

/** The certificate a fresh TLS connection to host:port is served, verified against `ca`. */
async function servedCertificate(url: string, ca: Buffer): Promise<PeerCertificate> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate())
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

describe('TLS', () => {
  it('serves HTTPS and hands devices an mqtts:// URL the simulator connects to, trusting the CA', async ({ lk }) => {
    // Scenario: TLS files set, plaintext off → https:// API, mqtts:// credentials; a lock trusting the CA comes
    // online through the orchestrator and executes an unlock.
    expect(lk.t.lk.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const device = await createDevice(lk)
    expect(device.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/)
    expect(lk.t.lk.brokerUrls).toEqual([device.url])
    const lock = lk.lock(device)
    await lock.start()
    await waitOnline(lk, device.deviceId)
    const unlocked = await lk.call('/locks/unlock_door', { device_id: device.deviceId, sync: true })
    expect(unlocked.body.action_attempt.status).toBe('success')
  })

  it('works with the Seam SDK over HTTPS given the CA', async ({ lk }) => {
    // Scenario: @seamapi/http with an https.Agent trusting the CA lists devices and locks a door.
    const device = await createDevice(lk)
    await lk.lock(device).start()
    await waitOnline(lk, device.deviceId)
    const seam = new SeamHttp({
      apiKey: lk.t.apiKey,
      endpoint: lk.t.lk.httpUrl,
      // The SDK's axios defaults to its fetch adapter, which ignores agents; the node http adapter honours one.
      axiosOptions: { adapter: 'http', httpsAgent: new HttpsAgent({ ca: lk.certs.ca }) },
    })
    expect((await seam.devices.list()).map((d: { device_id: string }) => d.device_id)).toEqual([device.deviceId])
    expect(await seam.locks.lockDoor({ device_id: device.deviceId })).toMatchObject({ status: 'success' })
  })

  it('refuses clients that do not trust the CA, on both ports', async ({ lk }) => {
    // Scenario: the default trust store → HTTPS and MQTTS handshakes fail; nothing is served in clear.
    const device = await createDevice(lk)
    await expect(fetch(`${lk.t.lk.httpUrl}/healthz`)).rejects.toThrow()
    await expect(
      connectRaw(device.url, { clientId: device.deviceId, username: device.deviceId, password: device.password }),
    ).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i)
    const seam = new SeamHttp({ apiKey: lk.t.apiKey, endpoint: lk.t.lk.httpUrl })
    await expect(seam.devices.list()).rejects.toThrow()
  })

  it('reloads renewed certificates for new connections without dropping a connected lock', async ({ lk }) => {
    // Scenario: a lock is online; the files are replaced and reloadTls() runs → new HTTPS and MQTTS handshakes get
    // CN=renewed, the lock never disconnects and still executes a command.
    const device = await createDevice(lk)
    const lock = lk.lock(device)
    await lock.start()
    await waitOnline(lk, device.deviceId)
    let disconnects = 0
    lock.on('disconnected', () => disconnects++)
    expect((await servedCertificate(lk.t.lk.httpUrl, lk.certs.ca)).subject.CN).toBe('first')
    expect((await servedCertificate(device.url, lk.certs.ca)).subject.CN).toBe('first')

    copyFileSync(lk.certs.renewed.cert, lk.certs.certFile)
    copyFileSync(lk.certs.renewed.key, lk.certs.keyFile)
    lk.t.lk.reloadTls()

    expect((await servedCertificate(lk.t.lk.httpUrl, lk.certs.ca)).subject.CN).toBe('renewed')
    expect((await servedCertificate(device.url, lk.certs.ca)).subject.CN).toBe('renewed')
    const unlocked = await lk.call('/locks/unlock_door', { device_id: device.deviceId, sync: true })
    expect(unlocked.body.action_attempt.status).toBe('success')
    expect(lock.connected).toBe(true)
    expect(disconnects).toBe(0)
  })

  it('keeps the old certificate when the renewed files are unusable', async ({ lk }) => {
    // Scenario: a key that does not match the certificate → reloadTls() throws, new connections still get CN=first.
    copyFileSync(lk.certs.renewed.cert, lk.certs.certFile)
    expect(() => lk.t.lk.reloadTls()).toThrow()
    expect((await servedCertificate(lk.t.lk.httpUrl, lk.certs.ca)).subject.CN).toBe('first')
  })

  it('reloads on SIGHUP in `npm start`, and logs the TLS port', async ({ certs, child }) => {
    // Scenario: main.ts with TLS on and MQTTS_PORT=0 → logs an mqtts:// listener; after the files are replaced,
    // SIGHUP → "TLS certificate reloaded" and new handshakes get CN=renewed; the process keeps running.
    const lk = await child({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile, MQTTS_PORT: '0' })
    expect(lk.httpUrl).toMatch(/^https:/)
    expect(lk.mqttUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/)
    const banner = lk.output.map((line) => (line.startsWith('{') ? JSON.parse(line) : {})).find((r) => r.broker_urls)
    expect(banner.broker_urls).toContain(lk.mqttUrl)
    expect((await servedCertificate(lk.httpUrl, certs.ca)).subject.CN).toBe('first')
    copyFileSync(certs.renewed.cert, certs.certFile)
    copyFileSync(certs.renewed.key, certs.keyFile)
    lk.process.kill('SIGHUP')
    await vi.waitFor(() => expect(lk.output.join('\n')).toContain('TLS certificate reloaded'), { timeout: 10_000 })
    expect((await servedCertificate(lk.httpUrl, certs.ca)).subject.CN).toBe('renewed')
    expect((await servedCertificate(lk.mqttUrl, certs.ca)).subject.CN).toBe('renewed')
    expect(lk.process.exitCode).toBeNull()
  })
})
