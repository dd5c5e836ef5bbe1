/**
 * The dispatcher's memory: deliveries due now, queued per webhook, and deliveries due later, in a heap by time.
 * `take()` hands out due work round-robin across webhooks within two bounds, in all and per webhook, so one
 * slow or dead endpoint holds at most its own slots, never the others' (docs/webhooks.md). No I/O, no timers.
 */

export interface Task {
  seq: number
  webhookId: string
  dueAt: number
}

export interface Limits {
  total: number
  perWebhook: number
}

/** A FIFO with O(1) shift. */
class Fifo<T> {
  private items: T[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head++]
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  drain(): T[] {
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
  }
}

/** A binary min-heap of tasks by due time, then seq (event order). */
class TaskHeap {
  private items: Task[] = []

  get size(): number {
    return this.items.length
  }

  peek(): Task | undefined {
    return this.items[0]
  }

  push(task: Task): void {
    this.items.push(task)
    this.up(this.items.length - 1)
  }

  pop(): Task | undefined {
    const top = this.items[0]
    const last = this.items.pop()
    if (top !== undefined && last !== undefined && this.items.length > 0) {
      this.items[0] = last
      this.down(0)
    }
    return top
  }

  /** Removes every task that `drop` selects; returns them. */
  remove(drop: (task: Task) => boolean): Task[] {
    const removed = this.items.filter(drop)
    if (removed.length === 0) return removed
    const kept = this.items.filter((task) => !drop(task))
    this.items = []
    for (const task of kept) this.push(task)
    return removed
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a] as Task
    const y = this.items[b] as Task
    return x.dueAt < y.dueAt || (x.dueAt === y.dueAt && x.seq < y.seq)
  }

  private swap(a: number, b: number): void {
    const t = this.items[a] as Task
    this.items[a] = this.items[b] as Task
    this.items[b] = t
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(i, parent)) return
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number): void {
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let min = i
      if (left < this.items.length && this.less(left, min)) min = left
      if (right < this.items.length && this.less(right, min)) min = right
      if (min === i) return
      this.swap(i, min)
      i = min
    }
  }
}

interface Lane {
  ready: Fifo<Task>
  running: number
}

export class WorkQueue {
  /** Every seq queued, scheduled or running: a delivery is never in two places. */
  private readonly known = new Set<number>()
  private readonly lanes = new Map<string, Lane>()
  /** Webhooks with ready work and a free slot, in turn order. */
  private readonly turns = new Set<string>()
  private readonly later = new TaskHeap()
  private running = 0

  constructor(private readonly limits: Limits) {}

  /** Queues a task (due now or later); false when that delivery is already here. */
  add(task: Task, nowMs: number): boolean {
    if (this.known.has(task.seq)) return false
    this.known.add(task.seq)
    if (task.dueAt <= nowMs) this.ready(task)
    else this.later.push(task)
    return true
  }

  /** Moves what has fallen due into the ready lanes. */
  promote(nowMs: number): void {
    for (let top = this.later.peek(); top && top.dueAt <= nowMs; top = this.later.peek())
      this.ready(this.later.pop() as Task)
  }

  nextDueAt(): number | undefined {
    return this.later.peek()?.dueAt
  }

  /** The next task to start, or undefined when nothing is ready or every usable slot is taken. */
  take(): Task | undefined {
    if (this.running >= this.limits.total) return undefined
    for (const webhookId of this.turns) {
      this.turns.delete(webhookId)
      const lane = this.lanes.get(webhookId)
      if (!lane || lane.running >= this.limits.perWebhook) continue
      const task = lane.ready.shift()
      if (!task) continue
      lane.running++
      this.running++
      // Back of the line: the next take serves another webhook first.
      if (lane.ready.length > 0 && lane.running < this.limits.perWebhook) this.turns.add(webhookId)
      return task
    }
    return undefined
  }

  /** A task taken earlier has finished (whatever the outcome). */
  done(task: Task): void {
    this.known.delete(task.seq)
    this.running--
    const lane = this.lanes.get(task.webhookId)
    if (!lane) return
    lane.running--
    if (lane.ready.length > 0) this.turns.add(task.webhookId)
    else if (lane.running === 0) this.lanes.delete(task.webhookId)
  }

  /** Forgets the queued and scheduled work of a webhook that was disabled; running tasks finish on their own. */
  dropWebhook(webhookId: string): void {
    const lane = this.lanes.get(webhookId)
    for (const task of lane?.ready.drain() ?? []) this.known.delete(task.seq)
    if (lane?.running === 0) this.lanes.delete(webhookId)
    for (const task of this.later.remove((t) => t.webhookId === webhookId)) this.known.delete(task.seq)
    this.turns.delete(webhookId)
  }

  get inFlight(): number {
    return this.running
  }

  get size(): number {
    return this.known.size
  }

  /** Tasks due later, waiting in the heap. */
  get scheduled(): number {
    return this.later.size
  }

  private ready(task: Task): void {
    let lane = this.lanes.get(task.webhookId)
    if (!lane) this.lanes.set(task.webhookId, (lane = { ready: new Fifo(), running: 0 }))
    lane.ready.push(task)
    if (lane.running < this.limits.perWebhook) this.turns.add(task.webhookId)
  }
}
