import { describe, expect, it } from 'vitest'
import { createPersistence } from '../../broker/retained-index.js'

function retained(topic: string, payload: string) {
  return {
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos: 1,
    retain: true,
    brokerId: 'b',
    brokerCounter: 1,
  } as never
}

async function topicsOf(stream: NodeJS.ReadableStream): Promise<string[]> {
  const out: string[] = []
  for await (const packet of stream as AsyncIterable<{ topic: string }>) out.push(packet.topic)
  return out.sort()
}

describe('retained-message index of the embedded broker', () => {
  it('answers exact topics from the index and wildcards from the full scan', async () => {
    // Scenario: retained status/state of two locks; exact, wildcard and cleared lookups.
    const persistence = createPersistence()
    ;(persistence as unknown as { broker: unknown }).broker = { id: 'test-broker' }
    const store = (packet: never) =>
      new Promise<void>((resolve, reject) =>
        persistence.storeRetained(packet, (error) => (error ? reject(error) : resolve())),
      )
    await store(retained('d/a/status', 'online'))
    await store(retained('d/a/state', '{}'))
    await store(retained('d/b/status', 'online'))

    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/a/status']))).toEqual(['d/a/status'])
    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/a/commands']))).toEqual([])
    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/+/status']))).toEqual(['d/a/status', 'd/b/status'])
    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/a/status', 'd/b/#']))).toEqual([
      'd/a/status',
      'd/b/status',
    ])

    await store(retained('d/a/status', ''))
    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/a/status']))).toEqual([])
    expect(await topicsOf(persistence.createRetainedStreamCombi(['d/+/status']))).toEqual(['d/b/status'])
  })
})
