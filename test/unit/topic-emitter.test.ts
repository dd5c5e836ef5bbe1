import { describe, expect, it } from 'vitest'
import { TopicEmitter, type EmittedMessage, type Listener } from '../../broker/topic-emitter.js'
import { matchesLevels } from '../../broker/topic-filter.js'

/** Emits and resolves once every listener has called done. */
function emit(emitter: TopicEmitter, topic: string): Promise<void> {
  return new Promise((resolve, reject) => emitter.emit({ topic }, (error) => (error ? reject(error) : resolve())))
}

/** A listener recording the topics it was given, done at once. */
function recorder(): { listener: Listener; topics: string[] } {
  const topics: string[] = []
  return { topics, listener: (message: EmittedMessage, done) => (topics.push(message.topic), done()) }
}

describe('MQTT topic filters', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/', true],
    ['a/+', 'a', false],
    ['a/+/c', 'a/x/c', true],
    ['a/+/c', 'a/x/d', false],
    ['+/+', '/x', true],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab/c', false],
    ['#', 'anything/at/all', true],
    ['latchkey/+/status', 'latchkey/dev-1/status', true],
    ['latchkey/+/status', 'latchkey/dev-1/state', false],
  ])('%s against %s → %s', (filter, topic, expected) => {
    expect(matchesLevels(filter.split('/'), topic)).toBe(expected)
  })
})

describe('the embedded broker message bus (TopicEmitter)', () => {
  it('delivers to exact-topic listeners and to every matching wildcard filter, and to nobody else', async () => {
    // Scenario: a lock's commands topic, a service filter with +, a # filter, an unrelated topic.
    const emitter = new TopicEmitter()
    const lock = recorder()
    const other = recorder()
    const plus = recorder()
    const some = recorder()
    emitter.on('latchkey/a/commands', lock.listener)
    emitter.on('latchkey/b/commands', other.listener)
    emitter.on('latchkey/+/commands', plus.listener)
    emitter.on('latchkey/#', some.listener)

    await emit(emitter, 'latchkey/a/commands')
    await emit(emitter, 'latchkey/a/status')
    await emit(emitter, 'elsewhere')

    expect(lock.topics).toEqual(['latchkey/a/commands'])
    expect(other.topics).toEqual([])
    expect(plus.topics).toEqual(['latchkey/a/commands'])
    expect(some.topics).toEqual(['latchkey/a/commands', 'latchkey/a/status'])
  })

  it('calls the emit callback only after every listener is done, and at once with no listener', async () => {
    // Scenario: two listeners on one topic; one finishes only when released.
    const emitter = new TopicEmitter()
    let release: () => void = () => {}
    emitter.on('t', (_message, done) => (release = done))
    emitter.on('t', (_message, done) => done())
    let finished = false
    emitter.emit({ topic: 't' }, () => (finished = true))
    expect(finished).toBe(false)
    release()
    expect(finished).toBe(true)

    let empty = false
    emitter.emit({ topic: 'nobody' }, () => (empty = true))
    expect(empty).toBe(true)
  })

  it('removes one registration of a listener on the next turn, and all of a topic with removeAllListeners', async () => {
    // Scenario: the same listener twice on one exact topic, once on a wildcard.
    const emitter = new TopicEmitter()
    const seen = recorder()
    emitter.on('x/y', seen.listener).on('x/y', seen.listener).on('x/+', seen.listener)
    await emit(emitter, 'x/y')
    expect(seen.topics).toHaveLength(3)

    await new Promise<void>((resolve) => emitter.removeListener('x/y', seen.listener, resolve))
    await emit(emitter, 'x/y')
    expect(seen.topics).toHaveLength(5)

    await new Promise<void>((resolve) => emitter.removeListener('x/+', seen.listener, resolve))
    emitter.removeAllListeners('x/y')
    await emit(emitter, 'x/y')
    expect(seen.topics).toHaveLength(5)
    expect(emitter.match('x/y')).toEqual([])
  })

  it('delivers at most `concurrency` messages at once and queues the rest in order', () => {
    // Scenario: concurrency 1, a listener that holds each message until released.
    const emitter = new TopicEmitter({ concurrency: 1 })
    const held: Array<() => void> = []
    const order: string[] = []
    emitter.on('q/+', (message, done) => (order.push(message.topic), held.push(done)))
    emitter.emit({ topic: 'q/1' })
    emitter.emit({ topic: 'q/2' })
    emitter.emit({ topic: 'q/3' })
    expect(order).toEqual(['q/1'])
    expect(emitter.length).toBe(2)
    held.shift()?.()
    expect(order).toEqual(['q/1', 'q/2'])
    held.shift()?.()
    held.shift()?.()
    expect(order).toEqual(['q/1', 'q/2', 'q/3'])
    expect(emitter.current).toBe(0)
  })

  it('sends a long queue of messages whose listeners answer at once without nesting one in another', () => {
    // Scenario: concurrency 100, 50,000 messages queued behind 100 held ones; once the held ones are released,
    // every queued message is delivered by a listener that answers at once → all delivered, in order, no stack
    // overflow (a recursive drain nests a frame set per queued message).
    const emitter = new TopicEmitter({ concurrency: 100 })
    const held: Array<() => void> = []
    const seen: number[] = []
    emitter.on('q', (message, done) => {
      seen.push((message as EmittedMessage & { n: number }).n)
      if (seen.length <= 100) held.push(done)
      else done()
    })
    const total = 50_000
    let callbacks = 0
    for (let n = 0; n < total; n++) emitter.emit({ topic: 'q', n } as EmittedMessage, () => callbacks++)
    expect(seen).toHaveLength(100)
    expect(emitter.length).toBe(total - 100)
    for (const done of held.splice(0)) done()
    expect(seen).toHaveLength(total)
    expect(seen.every((n, i) => n === i)).toBe(true)
    expect(callbacks).toBe(total)
    expect(emitter.current).toBe(0)
  })

  it('refuses messages once closed', async () => {
    const emitter = new TopicEmitter()
    const closed = new Promise<void>((resolve) => emitter.close(resolve))
    await closed
    await expect(emit(emitter, 't')).rejects.toThrow('closed')
  })

  it('calls on()’s done on a later turn', async () => {
    const emitter = new TopicEmitter()
    let subscribed = false
    const done = new Promise<void>((resolve) => emitter.on('t', recorder().listener, resolve)).then(
      () => (subscribed = true),
    )
    expect(subscribed).toBe(false)
    await done
    expect(subscribed).toBe(true)
  })
})
