import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { VirtualLock, type VirtualLockOptions } from '../simulator/index.js'
import { loadConfig } from '../src/config.js'
import { startLatchkey } from '../src/latchkey.js'
import { launchChromium } from './chromium.js'

/**
 * `npm run screenshot`: starts a throw-away latchkey with a few simulated locks and a local webhook receiver, drives
 * some traffic, and photographs the dashboard into docs/dashboard.png (desktop) and docs/dashboard-phone.png.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-screenshot-'))
const locks: VirtualLock[] = []

// The receiver refuses the first delivery, so the page shows a failed one with its Retry button.
let received = 0
const receiver = createServer((req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(received++ === 0 ? 500 : 204).end())
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/latchkey`

const lk = await startLatchkey(
  loadConfig({
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    LOG_LEVEL: 'silent',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    WEBHOOK_RETRY_SCHEDULE: '3600',
  }),
)
const key = lk.bootstrap?.api_key ?? ''

async function call(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${lk.httpUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = (await res.json()) as Record<string, unknown>
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`)
  return json
}

async function lockFor(name: string, options: Partial<VirtualLockOptions>, online = true): Promise<string> {
  const created = (await call('/devices/create', { name })) as { mqtt_credentials: Record<string, string> }
  const creds = created.mqtt_credentials as { username: string; url: string; password: string }
  if (!online) return creds.username
  const lock = new VirtualLock({ url: creds.url, deviceId: creds.username, password: creds.password, ...options })
  locks.push(lock)
  await lock.start()
  return creds.username
}

try {
  await call('/webhooks/create', { url: hookUrl, event_types: ['lock.*'] })
  const front = await lockFor('Front door', {
    behaviour: { sendAccepted: true, ackLatencyMs: [120, 400] },
    initialState: { locked: true, battery_level: 0.86, door_open: false },
  })
  const back = await lockFor('Back gate', {
    behaviour: { sendAccepted: true, ackLatencyMs: 80, jam: 1 },
    initialState: { locked: false, battery_level: 0.14, door_open: false },
  })
  await lockFor('Garage side door', {}, false)
  const office = await lockFor('Office', {
    behaviour: { ackLatencyMs: 60 },
    initialState: { locked: true, battery_level: 0.62, door_open: true },
  })
  // Let the locks announce themselves before commanding them.
  for (const id of [front, back, office]) {
    for (let i = 0; i < 100; i++) {
      const got = (await call('/devices/get', { device_id: id })) as { device: { properties: { online: boolean } } }
      if (got.device.properties.online) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  await call('/locks/unlock_door', { device_id: front, sync: true })
  await call('/locks/lock_door', { device_id: back, sync: true })
  await call('/locks/unlock_door', { device_id: office, sync: true })
  await call('/locks/lock_door', { device_id: front, sync: true })

  const browser = await launchChromium()
  try {
    for (const [file, viewport] of [
      ['docs/dashboard.png', { width: 1280, height: 900 }],
      ['docs/dashboard-phone.png', { width: 390, height: 844 }],
    ] as const) {
      const page = await browser.newPage({ viewport, deviceScaleFactor: 1 })
      await page.goto(`${lk.httpUrl}/dashboard`)
      await page.getByLabel('API key').fill(key)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.locator('#live', { hasText: /^live$/ }).waitFor()
      await page.locator('.device', { hasText: 'Office' }).waitFor()
      await page.locator('.deliveries li').first().waitFor()
      await page.screenshot({ path: join(ROOT, file), fullPage: true })
      await page.close()
      console.log(`wrote ${file}`)
    }
  } finally {
    await browser.close()
  }
} finally {
  await Promise.all(locks.map((lock) => lock.stop()))
  await lk.close()
  receiver.close()
  rmSync(dataDir, { recursive: true, force: true })
}
