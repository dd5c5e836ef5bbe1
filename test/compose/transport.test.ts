import { describe, expect, it } from 'vitest'
import { createMqttTransport } from '../../src/mqtt/transport.js'

describe('MQTT transport', () => {
  it('refuses to send before it is started, and closes without having started', async () => {
    // Scenario: built (as the services need it) but not started → not connected, send rejects, close resolves.
    const transport = createMqttTransport({
      url: 'mqtt://127.0.0.1:1',
      username: 'svc',
      password: 'pw',
      onError: () => {},
    })
    expect(transport.connected).toBe(false)
    await expect(
      transport.send('dev_1', { command_id: 'c', action: 'LOCK_DOOR', issued_at: 'x', expires_at: 'y' }),
    ).rejects.toThrow('MQTT client not connected')
    await transport.close()
  })
})
