import { hasWildcard, matchesLevels } from './topic-filter.js'

/** A message as the broker emits it: an aedes packet, matched on its topic. */
export interface EmittedMessage {
  topic: string
}

/** A subscriber; calls `done` once it has taken the message. */
export type Listener = (message: EmittedMessage, done: () => void) => void

type Callback = (error?: Error) => void

interface WildcardEntry {
  levels: string[]
  listeners: Listener[]
}

/**
 * The broker's message bus (aedes' `mq` option, the interface of mqemitter): who is subscribed to what, and the
 * delivery of each message to every matching listener, at most `concurrency` messages at a time (the rest queue in
 * order).
 *
 * Subscriptions to an exact topic, which is every lock's one subscription (its `commands`), are a single `Map` entry
 * from the topic to its listener: no trie, no per-level tables, and the key is the topic string the client's
 * subscription already holds (docs/performance.md#idle-lock-memory). Filters with wildcards, which only the service
 * and the broker itself use, are kept per distinct filter and tested one by one.
 */
export class TopicEmitter {
  closed = false
  /** Messages being delivered. */
  current = 0
  readonly concurrency: number
  private readonly exact = new Map<string, Listener | Listener[]>()
  private readonly wildcard = new Map<string, WildcardEntry>()
  /** Queued messages from `head` on; the sent ones before it are cut off in bulk (shift() copies the array). */
  private queue: Array<{ message: EmittedMessage; callback: Callback } | undefined> = []
  private head = 0
  /** A released() loop is sending queued messages: a delivery finishing inside it only frees its slot. */
  private draining = false

  constructor(options: { concurrency?: number } = {}) {
    this.concurrency = options.concurrency ?? 0
  }

  /** Messages waiting for a delivery slot. */
  get length(): number {
    return this.queue.length - this.head
  }

  on(topic: string, listener: Listener, done?: () => void): this {
    if (!topic || !listener) throw new Error('a topic and a listener are required')
    if (hasWildcard(topic)) {
      const entry = this.wildcard.get(topic)
      if (entry) entry.listeners.push(listener)
      else this.wildcard.set(topic, { levels: topic.split('/'), listeners: [listener] })
    } else {
      const existing = this.exact.get(topic)
      if (existing === undefined) this.exact.set(topic, listener)
      else if (Array.isArray(existing)) existing.push(listener)
      else this.exact.set(topic, [existing, listener])
    }
    if (done) setImmediate(done)
    return this
  }

  /** Removes one registration of the listener, on the next turn (as mqemitter does). */
  removeListener(topic: string, listener: Listener, done?: () => void): this {
    if (!topic || !listener) throw new Error('a topic and a listener are required')
    setImmediate(() => {
      this.remove(topic, listener)
      done?.()
    })
    return this
  }

  removeAllListeners(topic: string, done?: () => void): this {
    if (!topic) throw new Error('a topic is required')
    this.exact.delete(topic)
    this.wildcard.delete(topic)
    if (done) setImmediate(done)
    return this
  }

  emit(message: EmittedMessage, callback: Callback = noop): this {
    if (!message) throw new Error('a message is required')
    if (this.closed) {
      callback(new Error('mqemitter is closed'))
      return this
    }
    if (this.concurrency > 0 && this.current >= this.concurrency) this.queue.push({ message, callback })
    else this.deliver(message, callback)
    return this
  }

  close(callback: () => void): this {
    this.closed = true
    setImmediate(callback)
    return this
  }

  /** Listeners matching a topic name: its exact subscribers, then those of each matching wildcard filter. */
  match(topic: string): Listener[] {
    const exact = this.exact.get(topic)
    const matches: Listener[] = exact === undefined ? [] : Array.isArray(exact) ? [...exact] : [exact]
    for (const entry of this.wildcard.values()) {
      if (matchesLevels(entry.levels, topic)) matches.push(...entry.listeners)
    }
    return matches
  }

  private remove(topic: string, listener: Listener): void {
    if (hasWildcard(topic)) {
      const entry = this.wildcard.get(topic)
      if (!entry) return
      const index = entry.listeners.lastIndexOf(listener)
      if (index >= 0) entry.listeners.splice(index, 1)
      if (entry.listeners.length === 0) this.wildcard.delete(topic)
      return
    }
    const existing = this.exact.get(topic)
    if (existing === listener) this.exact.delete(topic)
    else if (Array.isArray(existing)) {
      const index = existing.lastIndexOf(listener)
      if (index >= 0) existing.splice(index, 1)
      if (existing.length === 1) this.exact.set(topic, existing[0] as Listener)
    }
  }

  private deliver(message: EmittedMessage, callback: Callback): void {
    const listeners = this.match(message.topic)
    this.current++
    let pending = listeners.length
    const finish = () => {
      callback()
      this.released()
    }
    if (pending === 0) return finish()
    // Each listener's `done` counts once, however often it is called.
    for (const listener of listeners) {
      let called = false
      listener.call(this, message, () => {
        if (called) return
        called = true
        if (--pending === 0) finish()
      })
    }
  }

  /**
   * A delivery slot freed: the queued messages go out in a loop, not by recursion. Listeners that answer at once
   * (most do) would otherwise nest one delivery inside the previous one's completion, one stack frame set per queued
   * message, and a long queue (100 lock connections at full speed) overflows the stack.
   */
  private released(): void {
    this.current--
    if (this.draining) return
    this.draining = true
    try {
      while (this.head < this.queue.length && (this.concurrency === 0 || this.current < this.concurrency)) {
        const next = this.queue[this.head] as { message: EmittedMessage; callback: Callback }
        this.queue[this.head++] = undefined
        this.deliver(next.message, next.callback)
      }
    } finally {
      this.draining = false
      if (this.head === this.queue.length) {
        this.queue = []
        this.head = 0
      } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
    }
  }
}

function noop(): void {}
