import { expect, vi } from 'vitest'
import { VirtualLock } from '../../simulator/index.js'
import type { VirtualLockOptions } from '../../simulator/lock.js'
import type { TestLatchkey } from './latchkey.js'

export interface CreatedDevice {
  deviceId: string
  url: string
  password: string
}

export async function createDevice(
  t: TestLatchkey,
  name = 'front door',
  extra: Record<string, unknown> = {},
  key?: string,
): Promise<CreatedDevice> {
  const res = await t.call('/devices/create', { name, ...extra }, key)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  const creds = res.body.mqtt_credentials
  return { deviceId: creds.username, url: creds.url, password: creds.password }
}

/** Waits until the device's properties (read through the API) satisfy `check`. */
export async function waitForProps(
  t: TestLatchkey,
  deviceId: string,
  check: (props: Record<string, unknown>) => boolean,
  key?: string,
): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> = {}
  await vi.waitFor(
    async () => {
      const res = await t.call('/devices/get', { device_id: deviceId }, key)
      last = res.body.device.properties
      if (!check(last)) throw new Error(`properties not there yet: ${JSON.stringify(last)}`)
    },
    { timeout: 10_000, interval: 10 },
  )
  return last
}

/** A simulated lock for a freshly created device, connected and announced online. */
export async function onlineLock(
  t: TestLatchkey,
  options: Partial<VirtualLockOptions> = {},
  key?: string,
): Promise<{ lock: VirtualLock; device: CreatedDevice }> {
  const device = await createDevice(t, 'simulated lock', {}, key)
  const lock = new VirtualLock({
    url: device.url,
    deviceId: device.deviceId,
    password: device.password,
    reconnectPeriodMs: 50,
    ...options,
  })
  await lock.start()
  await waitForProps(t, device.deviceId, (p) => p.online === true, key)
  return { lock, device }
}
