import { describe, expect, it } from 'vitest'
import { WorkQueue, type Task } from '../../src/webhooks/work-queue.js'

const task = (seq: number, webhookId: string, dueAt = 0): Task => ({ seq, webhookId, dueAt })

function takeAll(queue: WorkQueue): Task[] {
  const out: Task[] = []
  for (let t = queue.take(); t; t = queue.take()) out.push(t)
  return out
}

describe('work queue', () => {
  it('serves webhooks round-robin within the per-webhook and total bounds', () => {
    // Scenario: 4 tasks for A and 2 for B, 2 slots per webhook, 3 in all → A, B, A; then A waits for its slots.
    const queue = new WorkQueue({ total: 3, perWebhook: 2 })
    for (const t of [task(1, 'a'), task(2, 'a'), task(3, 'a'), task(4, 'a'), task(5, 'b'), task(6, 'b')])
      queue.add(t, 0)
    const first = takeAll(queue)
    expect(first.map((t) => t.seq)).toEqual([1, 5, 2])
    queue.done(first[0] as Task)
    expect(takeAll(queue).map((t) => t.seq)).toEqual([6])
    queue.done(first[1] as Task)
    queue.done(first[2] as Task)
    expect(takeAll(queue).map((t) => t.seq)).toEqual([3, 4])
    expect(queue.inFlight).toBe(3)
  })

  it('keeps a webhook at its bound while others are served', () => {
    // Scenario: A's 2 slots are taken and never released (a hanging endpoint); B's 50 tasks all go out.
    const queue = new WorkQueue({ total: 10, perWebhook: 2 })
    for (let i = 0; i < 20; i++) queue.add(task(i, 'a'), 0)
    for (let i = 100; i < 150; i++) queue.add(task(i, 'b'), 0)
    let servedB = 0
    for (let round = 0; round < 100; round++) {
      for (const t of takeAll(queue)) {
        if (t.webhookId === 'b') {
          servedB++
          queue.done(t)
        }
      }
    }
    expect(servedB).toBe(50)
    expect(queue.inFlight).toBe(2)
  })

  it('holds tasks until they are due, in time then seq order, and never twice', () => {
    // Scenario: two later tasks and a duplicate → nothing before its time, then the earlier first.
    const queue = new WorkQueue({ total: 10, perWebhook: 10 })
    expect(queue.add(task(2, 'a', 2000), 0)).toBe(true)
    expect(queue.add(task(1, 'a', 1000), 0)).toBe(true)
    expect(queue.add(task(1, 'a', 5), 0)).toBe(false)
    expect(queue.nextDueAt()).toBe(1000)
    queue.promote(999)
    expect(queue.take()).toBeUndefined()
    queue.promote(2000)
    expect(takeAll(queue).map((t) => t.seq)).toEqual([1, 2])
  })

  it('forgets the queued and scheduled work of a disabled webhook', () => {
    // Scenario: A has one ready and one later task; dropWebhook → neither comes out, and both can be queued again.
    const queue = new WorkQueue({ total: 10, perWebhook: 10 })
    queue.add(task(1, 'a'), 0)
    queue.add(task(2, 'a', 500), 0)
    queue.add(task(3, 'b'), 0)
    queue.dropWebhook('a')
    queue.promote(1000)
    expect(takeAll(queue).map((t) => t.seq)).toEqual([3])
    expect(queue.add(task(1, 'a'), 0)).toBe(true)
  })
})
