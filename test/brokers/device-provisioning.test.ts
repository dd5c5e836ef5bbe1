import { describe, expect, it } from 'vitest'
import { createBus } from '../../src/app/bus.js'
import { createDeviceService, type DeviceProvisioner, type DeviceServiceStore } from '../../src/app/devices.js'
import type { DeviceRecord } from '../../src/domain/device.js'
import { BrokerUnavailableError } from '../../src/mqtt/dynsec.js'

/** The device service's order of work with an external broker, against an in-memory store and provisioner. */
function setup(options: { createFails?: boolean; broker?: 'down' } = {}) {
  const calls: string[] = []
  const rows = new Map<string, DeviceRecord>()
  const store = {
    devices: {
      async create({ device }: { device: DeviceRecord }) {
        if (options.createFails) throw new Error('database is gone')
        calls.push(`row ${device.device_id}`)
        rows.set(device.device_id, device)
      },
      get: async (_workspaceId: string, deviceId: string) => rows.get(deviceId),
      list: async () => ({ items: [], hasMore: false }),
      update: async () => true,
      async delete(_workspaceId: string, deviceId: string) {
        calls.push(`delete row ${deviceId}`)
        return rows.delete(deviceId) ? [] : undefined
      },
      async setSecretHash(_workspaceId: string, deviceId: string) {
        calls.push(`hash ${deviceId}`)
        return rows.has(deviceId)
      },
    },
  } as unknown as DeviceServiceStore
  const act = (name: string) => async (deviceId: string) => {
    if (options.broker === 'down') throw new BrokerUnavailableError('no answer')
    calls.push(`${name} ${deviceId}`)
  }
  const provisioner: DeviceProvisioner = { provision: act('provision'), rotate: act('rotate'), remove: act('remove') }
  let next = 0
  const devices = createDeviceService({
    store,
    bus: createBus(),
    sessions: { disconnect: () => {} },
    newId: () => `dev_${++next}`,
    now: () => '2026-11-26T00:00:00.000Z',
    mqttPublicUrl: () => 'mqtt://broker:1883',
    provisioner,
  })
  return { calls, rows, devices }
}

describe('device service with a provisioned broker', () => {
  it('create provisions the broker before the row commits', async () => {
    const { calls, devices } = setup()
    await devices.create('ws', { name: 'door' })
    expect(calls).toEqual(['provision dev_1', 'row dev_1'])
  })

  it('a row that fails to commit takes its broker client along', async () => {
    // Scenario: the store throws after the broker client exists → the client is removed, the error surfaces.
    const { calls, devices } = setup({ createFails: true })
    await expect(devices.create('ws', { name: 'door' })).rejects.toThrow('database is gone')
    expect(calls).toEqual(['provision dev_1', 'remove dev_1'])
  })

  it('a broker that does not answer: create, rotate and delete fail with 503 and change no row', async () => {
    const { calls, rows, devices } = setup({ broker: 'down' })
    await expect(devices.create('ws', { name: 'door' })).rejects.toBeInstanceOf(BrokerUnavailableError)
    expect(rows.size).toBe(0)
    rows.set('dev_9', { device_id: 'dev_9' } as DeviceRecord)
    await expect(devices.rotateCredentials('ws', 'dev_9')).rejects.toBeInstanceOf(BrokerUnavailableError)
    await expect(devices.delete('ws', 'dev_9')).rejects.toBeInstanceOf(BrokerUnavailableError)
    expect(calls).toEqual([])
    expect(rows.has('dev_9')).toBe(true)
  })

  it('rotate and delete reach the broker only for a device of the workspace, then the row', async () => {
    const { calls, devices } = setup()
    await expect(devices.rotateCredentials('ws', 'latchkey-admin')).rejects.toMatchObject({ code: 'device_not_found' })
    await expect(devices.delete('ws', 'latchkey-admin')).rejects.toMatchObject({ code: 'device_not_found' })
    expect(calls).toEqual([])
    const { device } = await devices.create('ws', { name: 'door' })
    calls.length = 0
    await devices.rotateCredentials('ws', device.device_id)
    await devices.delete('ws', device.device_id)
    expect(calls).toEqual(['rotate dev_1', 'hash dev_1', 'remove dev_1', 'delete row dev_1'])
  })
})
