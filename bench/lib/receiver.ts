import type { ChildProcess, Serializable } from 'node:child_process'
import { forkTs, nextMessage, request, stopChild } from './children.js'

/** The webhook receiver process (bench/peer-process.ts receiver), seen from the bench. */

export interface ReceiverReport {
  [key: string]: unknown
  type: 'report'
  received: number
  verified: number
  bad: number
  /** Epoch ms of the first and last verified delivery. */
  first: number
  last: number
  arrivals: number
}

export class Receiver {
  private readonly waiting = new Map<string, (at: number) => void>()

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (raw: Serializable) => {
      const message = raw as { type?: string; id?: string; at?: number }
      if (message.type !== 'arrived' || message.id === undefined) return
      this.waiting.get(message.id)?.(message.at ?? 0)
      this.waiting.delete(message.id)
    })
  }

  static async start(): Promise<Receiver> {
    const child = forkTs('bench/peer-process.ts', ['receiver'])
    const { port } = await nextMessage<{ type: string; port: number }>(child, 'ready', 30_000)
    return new Receiver(child, port)
  }

  /** The receiver process, for its CPU time. */
  get pid(): number {
    return this.child.pid ?? 0
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`
  }

  async addSecret(secret: string): Promise<void> {
    await request(this.child, { type: 'secret', secret }, 'secret-ok')
  }

  report(reset = false): Promise<ReceiverReport> {
    return request<ReceiverReport>(this.child, { type: 'report', reset }, 'report')
  }

  /** Epoch ms at which the settled-attempt event of `attemptId` arrived (verified); rejects after `timeoutMs`. */
  arrival(attemptId: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(attemptId)
        reject(new Error(`no webhook for attempt ${attemptId} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(attemptId, (at) => {
        clearTimeout(timer)
        resolve(at)
      })
      this.child.send({ type: 'await', id: attemptId })
    })
  }

  stop(): Promise<void> {
    return stopChild(this.child)
  }
}

/** Wall-clock ms with sub-ms resolution, comparable across processes of one machine. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now()
}
