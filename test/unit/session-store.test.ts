import { describe, expect, it } from 'vitest'
import { SessionStore, type StoredPacket } from '../../broker/session-store.js'

function publish(topic: string, payload: string | Buffer, extra: Partial<StoredPacket> = {}): StoredPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: true, ...extra }
}

async function read<T>(stream: NodeJS.ReadableStream): Promise<T[]> {
  const out: T[] = []
  for await (const item of stream as AsyncIterable<T>) out.push(item)
  return out
}

async function retainedTopics(store: SessionStore, patterns: string[]): Promise<string[]> {
  return (await read<{ topic: string }>(store.createRetainedStreamCombi(patterns))).map((p) => p.topic).sort()
}

async function newStore(): Promise<SessionStore> {
  const store = new SessionStore()
  await store.setup({ id: 'broker-1' })
  return store
}

const lock = (id: string) => ({ id })

describe('the embedded broker session store: retained messages', () => {
  it('answers exact topics and wildcard filters, clears a topic on an empty payload, and counts the bytes', async () => {
    // Scenario: retained status/state of two locks; exact, wildcard, combined and cleared lookups.
    const store = await newStore()
    await store.storeRetained(publish('d/a/status', 'online'))
    await store.storeRetained(publish('d/a/state', '{"locked":true}'))
    await store.storeRetained(publish('d/b/status', 'online'))
    expect(store.retainedBytes()).toBe(6 + 15 + 6)

    expect(await retainedTopics(store, ['d/a/status'])).toEqual(['d/a/status'])
    expect(await retainedTopics(store, ['d/a/commands'])).toEqual([])
    expect(await retainedTopics(store, ['d/+/status'])).toEqual(['d/a/status', 'd/b/status'])
    expect(await retainedTopics(store, ['d/#'])).toEqual(['d/a/state', 'd/a/status', 'd/b/status'])
    expect(await retainedTopics(store, ['d/a/status', 'd/b/#'])).toEqual(['d/a/status', 'd/b/status'])

    await store.storeRetained(publish('d/a/status', 'offline'))
    expect(store.retainedBytes()).toBe(7 + 15 + 6)
    await store.storeRetained(publish('d/a/status', ''))
    expect(store.retainedBytes()).toBe(15 + 6)
    expect(await retainedTopics(store, ['d/a/status'])).toEqual([])
    expect(await retainedTopics(store, ['d/+/status'])).toEqual(['d/b/status'])
  })

  it('gives back each retained message byte for byte, as a retained publish with its QoS', async () => {
    // Scenario: a binary payload (every byte value) and a UTF-8 one, stored then read back.
    const store = await newStore()
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    await store.storeRetained(publish('bin', binary, { qos: 0 }))
    await store.storeRetained(publish('text', 'état ✓'))
    const [bin] = await read<StoredPacket>(store.createRetainedStreamCombi(['bin']))
    const [text] = await read<StoredPacket>(store.createRetainedStreamCombi(['text']))
    expect(bin).toMatchObject({ cmd: 'publish', topic: 'bin', qos: 0, retain: true })
    expect(Buffer.compare(bin?.payload as Buffer, binary)).toBe(0)
    expect((text?.payload as Buffer).toString('utf8')).toBe('état ✓')
    expect(store.retainedBytes()).toBe(256 + Buffer.byteLength('état ✓'))
  })

  it('keeps nothing of the stored packet: changing it afterwards changes nothing', async () => {
    const store = await newStore()
    const packet = publish('d/a/state', 'abc')
    await store.storeRetained(packet)
    ;(packet.payload as Buffer).write('xyz')
    const [stored] = await read<StoredPacket>(store.createRetainedStreamCombi(['d/a/state']))
    expect((stored?.payload as Buffer).toString()).toBe('abc')
  })
})

describe('the embedded broker session store: subscriptions', () => {
  it('matches QoS 1 subscriptions by exact topic and by wildcard filter, one entry per client and filter', async () => {
    // Scenario: two locks on their own commands topic, a service on a + filter, a QoS 0 subscriber.
    const store = await newStore()
    await store.addSubscriptions(lock('a'), [{ topic: 'd/a/commands', qos: 1 }])
    await store.addSubscriptions(lock('b'), [{ topic: 'd/b/commands', qos: 1 }])
    await store.addSubscriptions(lock('svc'), [{ topic: 'd/+/commands', qos: 1 }])
    await store.addSubscriptions(lock('q0'), [{ topic: 'd/a/commands', qos: 0 }])

    const byTopic = await store.subscriptionsByTopic('d/a/commands')
    expect(byTopic.map((s) => `${s.clientId} ${s.topic} ${s.qos}`).sort()).toEqual([
      'a d/a/commands 1',
      'svc d/+/commands 1',
    ])
    expect((await store.subscriptionsByTopic('d/c/commands')).map((s) => s.clientId)).toEqual(['svc'])
    expect(await store.subscriptionsByTopic('elsewhere')).toEqual([])
    expect(await store.countOffline()).toEqual({ subsCount: 3, clientsCount: 4 })
  })

  it('restores a client’s subscriptions as stored, follows QoS changes, and forgets them on remove and clean', async () => {
    // Scenario: a client adds two filters, downgrades one to QoS 0, removes one, is cleaned.
    const store = await newStore()
    const client = lock('a')
    await store.addSubscriptions(client, [{ topic: 'd/a/commands', qos: 1 }])
    expect(await store.subscriptionsByClient(client)).toEqual([
      { topic: 'd/a/commands', qos: 1, rh: undefined, rap: undefined, nl: undefined },
    ])
    await store.addSubscriptions(client, [{ topic: 'd/a/extra', qos: 1, subscriptionIdentifier: 7 }])
    expect((await store.subscriptionsByClient(client)).map((s) => s.topic).sort()).toEqual([
      'd/a/commands',
      'd/a/extra',
    ])
    expect((await store.subscriptionsByClient(client)).find((s) => s.topic === 'd/a/extra')).toMatchObject({
      subscriptionIdentifier: 7,
    })

    // The same filter again at QoS 0: kept for the client, out of the offline-queue index.
    await store.addSubscriptions(client, [{ topic: 'd/a/commands', qos: 0 }])
    expect(await store.subscriptionsByTopic('d/a/commands')).toEqual([])
    expect((await store.subscriptionsByClient(client)).find((s) => s.topic === 'd/a/commands')?.qos).toBe(0)
    expect(await read(store.getClientList('d/a/commands'))).toEqual(['a'])

    await store.removeSubscriptions(client, ['d/a/commands', 'not/subscribed'])
    expect((await store.subscriptionsByClient(client)).map((s) => s.topic)).toEqual(['d/a/extra'])
    expect(await store.subscriptionsByTopic('d/a/extra')).toHaveLength(1)

    await store.cleanSubscriptions(client)
    expect(await store.subscriptionsByClient(client)).toEqual([])
    expect(await store.subscriptionsByTopic('d/a/extra')).toEqual([])
    expect(await store.countOffline()).toEqual({ subsCount: 0, clientsCount: 0 })
  })

  it('keeps one entry per client for a filter subscribed twice', async () => {
    const store = await newStore()
    await store.addSubscriptions(lock('svc'), [{ topic: 'd/+/status', qos: 1 }])
    await store.addSubscriptions(lock('svc'), [{ topic: 'd/+/status', qos: 1 }])
    await store.addSubscriptions(lock('a'), [{ topic: 'd/a/status', qos: 1 }])
    await store.addSubscriptions(lock('a'), [{ topic: 'd/a/status', qos: 1 }])
    expect((await store.subscriptionsByTopic('d/a/status')).map((s) => s.clientId).sort()).toEqual(['a', 'svc'])
    await store.removeSubscriptions(lock('a'), ['d/a/status'])
    expect((await store.subscriptionsByTopic('d/a/status')).map((s) => s.clientId)).toEqual(['svc'])
  })
})

describe('the embedded broker session store: queues and wills', () => {
  it('queues QoS 1 packets per client, records their packet id, and drops the queue once empty', async () => {
    // Scenario: two commands queued for an offline lock, delivered on reconnect, then acknowledged.
    const store = await newStore()
    const client = lock('a')
    const first = publish('d/a/commands', '1', { retain: false, brokerId: 'broker-1', brokerCounter: 1 })
    const second = publish('d/a/commands', '2', { retain: false, brokerId: 'broker-1', brokerCounter: 2 })
    await store.outgoingEnqueueCombi([{ clientId: 'a' }], first)
    await store.outgoingEnqueue({ clientId: 'a' }, second)
    const queued = await read<StoredPacket>(store.outgoingStream(client))
    expect(queued.map((p) => (p.payload as Buffer).toString())).toEqual(['1', '2'])

    await store.outgoingUpdate(client, { ...first, messageId: 11 })
    await store.outgoingUpdate(client, { ...second, messageId: 12 })
    await expect(store.outgoingUpdate(client, { ...second, brokerCounter: 9, messageId: 99 })).rejects.toThrow(
      'no such packet',
    )
    expect((await store.outgoingClearMessageId(client, { ...first, messageId: 11 }))?.brokerCounter).toBe(1)
    expect(await read(store.outgoingStream(client))).toHaveLength(1)
    await store.outgoingClearMessageId(client, { ...second, messageId: 12 })
    expect(await read(store.outgoingStream(client))).toEqual([])
    expect(await store.outgoingClearMessageId(client, { ...second, messageId: 12 })).toBeUndefined()
  })

  it('stores, reads and deletes incoming QoS 2 packets by id', async () => {
    const store = await newStore()
    const client = lock('a')
    await store.incomingStorePacket(client, publish('t', 'x', { qos: 2, messageId: 5 }))
    expect((await store.incomingGetPacket(client, { topic: 't', payload: '', qos: 2, messageId: 5 })).messageId).toBe(5)
    await store.incomingDelPacket(client, { topic: 't', payload: '', qos: 2, messageId: 5 })
    await expect(store.incomingGetPacket(client, { topic: 't', payload: '', qos: 2, messageId: 5 })).rejects.toThrow()
    await expect(store.incomingDelPacket(client, { topic: 't', payload: '', qos: 2, messageId: 5 })).rejects.toThrow()
    await store.incomingStorePacket(client, publish('t', 'y', { qos: 2, messageId: 6 }))
    await store.cleanIncoming(client)
    await expect(store.incomingGetPacket(client, { topic: 't', payload: '', qos: 2, messageId: 6 })).rejects.toThrow()
  })

  it('keeps each will stamped with broker and client, shares equal short payloads, and streams orphans', async () => {
    // Scenario: two locks with the same `offline` will; one will's broker is gone.
    const store = await newStore()
    const willA = publish('d/a/status', 'offline')
    const willB = publish('d/b/status', 'offline')
    await store.putWill(lock('a'), willA)
    await store.putWill(lock('b'), willB)
    expect(await store.getWill(lock('a'))).toMatchObject({ brokerId: 'broker-1', clientId: 'a', topic: 'd/a/status' })
    expect(willA.payload).toBe(willB.payload)
    expect((willA.payload as Buffer).toString()).toBe('offline')

    expect(await read(store.streamWill({ 'broker-1': Date.now() }))).toEqual([])
    expect((await read<StoredPacket>(store.streamWill({}))).map((w) => w.clientId)).toEqual(['a', 'b'])
    expect((await store.delWill(lock('a')))?.clientId).toBe('a')
    expect(await store.getWill(lock('a'))).toBeUndefined()
  })
})
