import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import { describe, expect, it, vi } from 'vitest'
import { createBus } from '../../src/app/bus.js'
import type { DeviceRecord } from '../../src/domain/device.js'
import { DashboardHub } from '../../src/http/dashboard/hub.js'

/** A response whose socket is full until the test says it drained. */
class StuckResponse extends EventEmitter {
  writes: string[] = []
  destroyed = false
  ended = false
  full = true
  writeHead() {
    return this
  }
  write(chunk: string) {
    this.writes.push(chunk)
    return !this.full
  }
  end() {
    this.ended = true
  }
  destroy() {
    this.destroyed = true
    this.emit('close')
  }
}

const device = (workspace_id: string) => ({ workspace_id }) as DeviceRecord

describe('DashboardHub', () => {
  it('holds at most one unsent snapshot for a client that does not read, however many changes come', async () => {
    const bus = createBus()
    const snapshots: string[] = []
    const hub = new DashboardHub({
      bus,
      snapshot: async (workspaceId, view) => {
        snapshots.push(view)
        return { workspaceId, view, padding: 'x'.repeat(10_000) }
      },
      onError: (error) => {
        throw error
      },
      batchMs: 1,
      drainTimeoutMs: 60_000,
    })
    const raw = new StuckResponse()
    try {
      hub.open('ws_a', raw as unknown as ServerResponse)
      // hello, then the first view, whose write reports a full socket: nothing more is written until it drains.
      await vi.waitFor(() => expect(raw.writes).toHaveLength(2))
      for (let i = 0; i < 1000; i++) bus.emit('deviceChanged', device('ws_a'))
      bus.emit('deviceChanged', device('ws_b'))
      await new Promise((resolve) => setImmediate(resolve))
      expect(raw.writes).toHaveLength(2)
      expect(snapshots).toHaveLength(1)

      // Drained: each dirty view is sent once more, the thousand changes folded into one devices snapshot.
      raw.full = false
      raw.emit('drain')
      await vi.waitFor(() => expect(raw.writes).toHaveLength(5))
      const events = raw.writes.slice(2).map((w) => /^event: (\w+)/.exec(w)?.[1])
      expect(events.sort()).toEqual(['attempts', 'devices', 'webhooks'])
      expect(raw.writes.join('')).not.toContain('ws_b')
    } finally {
      hub.close()
    }
    expect(raw.ended).toBe(true)
    expect(hub.size).toBe(0)
  })

  it('cuts off a client that stays unread past the drain timeout', async () => {
    const bus = createBus()
    const hub = new DashboardHub({
      bus,
      snapshot: async () => ({}),
      onError: () => {},
      drainTimeoutMs: 20,
    })
    const raw = new StuckResponse()
    try {
      hub.open('ws_a', raw as unknown as ServerResponse)
      await vi.waitFor(() => expect(raw.destroyed).toBe(true))
      expect(hub.size).toBe(0)
    } finally {
      hub.close()
    }
  })

  it('ends a stream whose key stopped working, at the next resync', async () => {
    const bus = createBus()
    const hub = new DashboardHub({ bus, snapshot: async () => ({}), onError: () => {}, resyncMs: 10 })
    const revoked = new StuckResponse()
    const kept = new StuckResponse()
    revoked.full = kept.full = false
    let keyWorks = true
    try {
      hub.open('ws_a', revoked as unknown as ServerResponse, async () => keyWorks)
      hub.open('ws_a', kept as unknown as ServerResponse)
      await vi.waitFor(() => expect(revoked.writes.length).toBeGreaterThanOrEqual(4))
      keyWorks = false
      await vi.waitFor(() => expect(revoked.ended).toBe(true))
      expect(kept.ended).toBe(false)
      expect(hub.size).toBe(1)
    } finally {
      hub.close()
    }
  })
})
