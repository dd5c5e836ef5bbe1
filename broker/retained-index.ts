import persistenceModule, { type AedesMemoryPersistence } from 'aedes-persistence'
import { Readable } from 'node:stream'

/** A retained PUBLISH as the persistence holds it. */
interface RetainedPacket {
  topic: string
  payload: Buffer | string
}

// aedes-persistence is CommonJS: at run time its default import is the factory its typings call `default`.
const memoryPersistence = persistenceModule as unknown as () => AedesMemoryPersistence

function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#')
}

/**
 * aedes' memory persistence, with retained messages also indexed by exact topic. The stock store answers every
 * subscription by testing each retained message against it; with two retained messages per lock (`status`, `state`)
 * N locks subscribing cost O(N²), which kept 20,000 locks from connecting (docs/performance.md). A lock subscribes
 * to one exact topic, its `commands`, so that lookup becomes one map read; wildcard filters (the orchestrator's)
 * still take the full scan.
 */
export function createPersistence(): AedesMemoryPersistence & { retainedBytes(): number } {
  const persistence = memoryPersistence()
  const byTopic = new Map<string, RetainedPacket>()
  const storeRetained = persistence.storeRetained.bind(persistence)
  const retainedCombi = persistence.createRetainedStreamCombi.bind(persistence)

  persistence.storeRetained = (packet, callback) => {
    const retained = packet as unknown as RetainedPacket
    // [MQTT-3.3.1-10]: an empty retained payload clears the topic.
    if (retained.payload.length === 0) byTopic.delete(retained.topic)
    else byTopic.set(retained.topic, { ...retained })
    return storeRetained(packet, callback)
  }

  persistence.createRetainedStreamCombi = (patterns: string[]) => {
    if (patterns.some(hasWildcard)) return retainedCombi(patterns)
    return Readable.from(patterns.flatMap((topic) => byTopic.get(topic) ?? []))
  }
  return Object.assign(persistence, {
    /** Payload bytes held as retained messages: what the broker keeps for good. */
    retainedBytes() {
      let bytes = 0
      for (const { payload } of byTopic.values()) bytes += Buffer.byteLength(payload)
      return bytes
    },
  })
}
