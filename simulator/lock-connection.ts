import { connect, ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt'
import { deviceTopic, type DeviceTopicKind } from '../devices/index.js'

/**
 * The MQTT side of one virtual lock (docs/mqtt.md): persistent session, `offline` will, retained `online` status,
 * TCP_NODELAY, subscription to its own `commands`. What the lock *does* lives in lock.ts.
 */

export interface LockConnectionOptions {
  url: string
  deviceId: string
  password: string
  /** mqtt.js reconnectPeriod; 0 disables automatic reconnects. Default 1000. */
  reconnectPeriodMs?: number
  /** start() gives up after this long without a connection. Default 30 s. */
  startTimeoutMs?: number
  /** PEM CA certificate(s) to trust for an mqtts:// broker signed by a private CA. */
  ca?: string | Buffer
}

export interface LockConnectionHooks {
  /** Called on every (re)connect after `online` is published; the connection counts as up once it resolves. */
  announce: () => Promise<unknown>
  connected: () => void
  disconnected: () => void
  command: (payload: Buffer) => void
  error: (error: Error) => void
}

const STOP_TIMEOUT_MS = 2_000

export class LockConnection {
  private readonly options: LockConnectionOptions
  private readonly hooks: LockConnectionHooks
  private readonly commandsTopic: string
  private client: MqttClient | undefined
  /** Bumped on every connect and disconnect, so callbacks of an older connection change nothing. */
  private generation = 0
  private isConnected = false
  /** Resolves the promise of start() on the first successful announce. */
  private pendingStart: (() => void) | undefined

  constructor(options: LockConnectionOptions, hooks: LockConnectionHooks) {
    this.options = options
    this.hooks = hooks
    this.commandsTopic = deviceTopic(options.deviceId, 'commands')
  }

  get connected(): boolean {
    return this.isConnected
  }

  get started(): boolean {
    return this.client !== undefined
  }

  /** Resolves once connected and announced; rejects at once on a CONNACK refusal (bad credentials). */
  async start(): Promise<void> {
    if (this.client) throw new Error(`lock ${this.options.deviceId}: already started`)
    const client = connect(this.options.url, this.mqttOptions())
    this.client = client
    client.on('connect', (connack) => this.onConnect(client, !connack.sessionPresent))
    client.on('close', () => {
      if (client === this.client) this.markDisconnected()
    })
    client.on('message', (topic, payload) => {
      if (client === this.client && topic === this.commandsTopic) this.hooks.command(payload)
    })
    // mqtt.js throws on an 'error' nobody listens to.
    client.on('error', (err) => this.hooks.error(err))
    try {
      await this.firstConnection(client)
    } catch (err) {
      this.client = undefined
      client.end(true)
      throw err
    }
  }

  /** Clean shutdown: retained `offline`, then DISCONNECT, so the broker discards the will. */
  async stop(): Promise<void> {
    const client = this.client
    if (!client) return
    if (this.isConnected) await withTimeout(this.publish('status', 'offline', true), STOP_TIMEOUT_MS)
    this.client = undefined
    const ended = client.endAsync(!client.connected).then(() => true)
    if (!(await withTimeout(ended, STOP_TIMEOUT_MS))) client.end(true)
    this.markDisconnected()
  }

  /** Power cut: the socket dies without DISCONNECT, so the broker publishes the `offline` will. No reconnect. */
  kill(): void {
    const client = this.client
    if (!client) return
    this.client = undefined
    client.end(true)
    this.markDisconnected()
  }

  /** Network blip: drop the socket abruptly (the will fires) and reconnect after downMs, same session. */
  flap(downMs: number): void {
    const client = this.client
    if (!client || !this.isConnected) return
    // mqtt.js waits reconnectPeriod before reconnecting; onConnect restores the configured value.
    client.options.reconnectPeriod = Math.max(1, downMs)
    client.stream.destroy()
  }

  /**
   * QoS 1 publish; resolves true on PUBACK, false when stopped or the publish failed. While the socket is down
   * mqtt.js keeps the message and sends it after the reconnect.
   */
  publish(kind: DeviceTopicKind, payload: string, retain: boolean): Promise<boolean> {
    const client = this.client
    if (!client) return Promise.resolve(false)
    return new Promise((resolve) => {
      client.publish(deviceTopic(this.options.deviceId, kind), payload, { qos: 1, retain }, (err) => {
        if (err && client === this.client) this.hooks.error(err)
        resolve(!err)
      })
    })
  }

  private mqttOptions(): IClientOptions {
    const id = this.options.deviceId
    return {
      protocolVersion: 4,
      // [docs/mqtt.md#connecting] client id = username = device id.
      clientId: id,
      username: id,
      password: this.options.password,
      // A persistent session: QoS 1 commands queued by the broker while we are away arrive on reconnect.
      clean: false,
      // onConnect subscribes whenever the broker reports no session.
      resubscribe: false,
      reconnectPeriod: this.reconnectPeriodMs(),
      connectTimeout: this.options.startTimeoutMs ?? 30_000,
      will: { topic: deviceTopic(id, 'status'), payload: 'offline', qos: 1, retain: true },
      ...(this.options.ca ? { ca: this.options.ca } : {}),
    }
  }

  private reconnectPeriodMs(): number {
    return this.options.reconnectPeriodMs ?? 1_000
  }

  private firstConnection(client: MqttClient): Promise<void> {
    const { deviceId, url } = this.options
    const timeoutMs = this.options.startTimeoutMs ?? 30_000
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer)
        client.off('error', onError)
        this.pendingStart = undefined
        if (err) reject(err)
        else resolve()
      }
      // Only a CONNACK refusal is final; network errors are retried by mqtt.js until the timeout.
      const onError = (err: Error): void => {
        if (err instanceof ErrorWithReasonCode) {
          finish(new Error(`lock ${deviceId}: broker refused the connection: ${err.message}`, { cause: err }))
        }
      }
      const timer = setTimeout(
        () => finish(new Error(`lock ${deviceId}: not connected to ${url} within ${timeoutMs} ms`)),
        timeoutMs,
      )
      client.on('error', onError)
      this.pendingStart = () => finish()
    })
  }

  private onConnect(client: MqttClient, needsSubscribe: boolean): void {
    if (client !== this.client) return
    const generation = ++this.generation
    // [docs/mqtt.md#connecting] without TCP_NODELAY a command/ack round trip costs 40–90 ms (Nagle + delayed ACK).
    ;(client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
    client.options.reconnectPeriod = this.reconnectPeriodMs()
    this.announce(client, needsSubscribe).then(
      () => {
        if (generation !== this.generation) return
        this.isConnected = true
        this.pendingStart?.()
        this.hooks.connected()
      },
      (err: unknown) => this.hooks.error(err instanceof Error ? err : new Error(String(err))),
    )
  }

  private async announce(client: MqttClient, needsSubscribe: boolean): Promise<void> {
    if (needsSubscribe) await client.subscribeAsync(this.commandsTopic, { qos: 1 })
    await Promise.all([this.publish('status', 'online', true), this.hooks.announce()])
  }

  private markDisconnected(): void {
    this.generation += 1
    if (!this.isConnected) return
    this.isConnected = false
    this.hooks.disconnected()
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
