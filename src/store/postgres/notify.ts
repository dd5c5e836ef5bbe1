import pg from 'pg'

/** The channel a settle transaction notifies with the attempt's id (docs/scale-out.md#attempts). */
export const ATTEMPT_SETTLED_CHANNEL = 'latchkey_attempt_settled'

/** The channel a transaction that queues webhook deliveries notifies (docs/scale-out.md#deliveries). */
export const OUTBOX_CHANNEL = 'latchkey_outbox'

/**
 * One connection of its own that LISTENs on every channel asked for and hands each payload to that channel's
 * listeners. A lost connection is opened again after a second; notifications sent meanwhile are lost, which the
 * pollers cover.
 */
export class PgListener {
  private client: pg.Client | undefined
  private connected = false
  private retry: NodeJS.Timeout | undefined
  private closed = false
  private readonly listeners = new Map<string, Array<(payload: string) => void>>()
  /** Channels whose LISTEN the current connection has completed. */
  private readonly active = new Set<string>()
  private readonly resets: Array<() => void> = []

  constructor(
    private readonly url: string,
    private readonly onError: (error: unknown, context: string) => void,
  ) {}

  listen(channel: string, listener: (payload: string) => void): void {
    const known = this.listeners.get(channel)
    if (known) {
      known.push(listener)
      return
    }
    this.listeners.set(channel, [listener])
    // Connected: LISTEN now. Connecting, or waiting to reconnect: LISTENs when connected. Neither: connect.
    if (this.client && this.connected) this.listenOn(this.client, channel)
    else if (!this.client && !this.retry) void this.connect()
  }

  /** LISTEN on a connected client: the channel is listened to once that is done, if the client is still current. */
  private listenOn(client: pg.Client, channel: string): void {
    client.query(`LISTEN ${channel}`).then(
      () => {
        if (this.client === client) this.active.add(channel)
      },
      (error: unknown) => {
        if (this.client === client) this.lose(error)
      },
    )
  }

  /** Whether every notification on `channel` reaches this listener now: its LISTEN is done on a live connection. */
  listening(channel: string): boolean {
    return this.connected && this.active.has(channel)
  }

  /** Called each time the connection is lost and each time it is (re)established: notifications may have been missed. */
  onReset(listener: () => void): void {
    this.resets.push(listener)
  }

  private reset(): void {
    for (const listener of this.resets) listener()
  }

  private lose(error?: unknown): void {
    const client = this.client
    if (!client) return
    this.client = undefined
    this.connected = false
    this.active.clear()
    this.reset()
    client.end().catch(() => {})
    if (this.closed) return
    if (error) this.onError(error, 'listen')
    this.retry = setTimeout(() => {
      this.retry = undefined
      void this.connect()
    }, 1000)
  }

  private async connect(): Promise<void> {
    if (this.closed) return
    const client = new pg.Client({ connectionString: this.url })
    this.client = client
    const lost = (error?: unknown) => {
      if (this.client === client) this.lose(error)
    }
    client.on('error', (error) => lost(error))
    client.on('end', () => lost())
    client.on('notification', (message) => {
      if (message.payload === undefined) return
      for (const listener of this.listeners.get(message.channel) ?? []) listener(message.payload)
    })
    try {
      await client.connect()
      const channels = [...this.listeners.keys()]
      for (const channel of channels) await client.query(`LISTEN ${channel}`)
      if (this.client === client) {
        this.connected = true
        for (const channel of channels) this.active.add(channel)
        this.reset()
        // Asked for while the LISTENs above ran.
        for (const channel of this.listeners.keys()) if (!this.active.has(channel)) this.listenOn(client, channel)
      }
    } catch (error) {
      lost(error)
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.retry) clearTimeout(this.retry)
    const client = this.client
    this.client = undefined
    this.connected = false
    this.active.clear()
    await client?.end().catch(() => {})
  }
}
