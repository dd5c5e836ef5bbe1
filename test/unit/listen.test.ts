import { once } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { describe, expect, it } from 'vitest'
import { ListenError, listenAs } from '../../src/compose/listen.js'

async function listen(port: number): Promise<Server> {
  const server = createServer()
  server.listen(port, '127.0.0.1')
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))])
  return server
}

describe('listenAs', () => {
  it('names the variable of the port that is taken, among several listeners', async () => {
    // Scenario: the broker opens MQTT_PORT (free, 0) and MQTTS_PORT (taken) in one step.
    const busy = await listen(0)
    const port = (busy.address() as AddressInfo).port
    try {
      const failure = await listenAs(
        [
          { variable: 'MQTT_PORT', host: '127.0.0.1', port: 0 },
          { variable: 'MQTTS_PORT', host: '127.0.0.1', port },
        ],
        () => listen(port),
      ).catch((error: unknown) => error)
      expect(failure).toBeInstanceOf(ListenError)
      expect((failure as ListenError).message).toBe(
        `MQTTS_PORT: 127.0.0.1:${port} is already in use; stop what holds it or set MQTTS_PORT to a free port`,
      )
    } finally {
      busy.close()
    }
  })

  it('passes any other failure through unchanged', async () => {
    // Scenario: an error that is not about binding keeps its identity (and its stack) for the log.
    const original = new Error('certificate unreadable')
    await expect(listenAs([{ variable: 'PORT', host: '::1', port: 1 }], () => Promise.reject(original))).rejects.toBe(
      original,
    )
  })
})
