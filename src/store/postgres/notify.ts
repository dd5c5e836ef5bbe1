import pg from 'pg'

/** The channel a settle transaction notifies with the attempt's id (docs/scale-out.md#attempts). */
export const ATTEMPT_SETTLED_CHANNEL = 'latchkey_attempt_settled'

/**
 * One connection of its own that LISTENs on a channel and hands each payload to the listeners. A lost connection is
 * opened again after a second; notifications sent meanwhile are lost, which the waiters' poll covers.
 */
export class PgListener {
  private client: pg.Client | undefined
  private retry: NodeJS.Timeout | undefined
  private closed = false
  private readonly listeners: Array<(payload: string) => void> = []

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onError: (error: unknown, context: string) => void,
  ) {}

  listen(listener: (payload: string) => void): void {
    this.listeners.push(listener)
    if (this.listeners.length === 1) void this.connect()
  }

  private async connect(): Promise<void> {
    if (this.closed) return
    const client = new pg.Client({ connectionString: this.url })
    this.client = client
    const lost = (error?: unknown) => {
      if (this.client !== client) return
      this.client = undefined
      client.end().catch(() => {})
      if (this.closed) return
      if (error) this.onError(error, `listen ${this.channel}`)
      this.retry = setTimeout(() => void this.connect(), 1000)
    }
    client.on('error', (error) => lost(error))
    client.on('end', () => lost())
    client.on('notification', (message) => {
      if (message.channel !== this.channel || message.payload === undefined) return
      for (const listener of this.listeners) listener(message.payload)
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${this.channel}`)
    } catch (error) {
      lost(error)
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.retry) clearTimeout(this.retry)
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => {})
  }
}
