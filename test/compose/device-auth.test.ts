import { describe, expect, it } from 'vitest'
import { sha256 } from '../../src/app/credentials.js'
import { createDeviceAuth } from '../../src/app/device-auth.js'

const secrets = new Map([['dev_1', sha256('device-secret')]])
const authenticate = createDeviceAuth({
  serviceUsername: 'latchkey-orchestrator',
  servicePassword: 'service-secret',
  store: { devices: { secretHash: async (deviceId) => secrets.get(deviceId) } },
})

describe('device auth', () => {
  it('accepts the service account and a device with its current secret, as who they are', async () => {
    // Scenario: right passwords → the service principal, the device principal named by its username.
    expect(await authenticate('latchkey-orchestrator', Buffer.from('service-secret'))).toEqual({ kind: 'service' })
    expect(await authenticate('dev_1', Buffer.from('device-secret'))).toEqual({ kind: 'device', deviceId: 'dev_1' })
  })

  it('refuses a wrong password, an unknown device, and a device secret offered for the service account', async () => {
    // Scenario: every wrong pairing → undefined (the broker refuses the connection).
    expect(await authenticate('latchkey-orchestrator', Buffer.from('device-secret'))).toBeUndefined()
    expect(await authenticate('dev_1', Buffer.from('service-secret'))).toBeUndefined()
    expect(await authenticate('dev_2', Buffer.from('device-secret'))).toBeUndefined()
  })
})
