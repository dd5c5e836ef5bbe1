/**
 * A listener that could not open its port, named by the variable that sets it, so that start-up fails with one line
 * an operator can act on (docs/operations.md#starting) rather than a stack trace.
 */
export class ListenError extends Error {
  constructor(
    readonly variable: string,
    readonly address: string,
    readonly code: string,
  ) {
    super(ListenError.describe(variable, address, code))
    this.name = 'ListenError'
  }

  private static describe(variable: string, address: string, code: string): string {
    switch (code) {
      case 'EADDRINUSE':
        return `${variable}: ${address} is already in use; stop what holds it or set ${variable} to a free port`
      case 'EACCES':
        return `${variable}: permission denied to listen on ${address}; use a port above 1023 or grant the capability`
      default:
        return `${variable}: cannot listen on ${address} (${code})`
    }
  }
}

/** A port some variable sets, e.g. `{ variable: 'PORT', host: '0.0.0.0', port: 3000 }`. */
export interface Listener {
  variable: string
  host: string
  port: number
}

const LISTEN_CODES = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'])

/**
 * Runs `listen`, which opens one or more of `listeners`; a failure to bind becomes a ListenError naming the
 * variable of the port that failed (the first listener's when the error does not say). Anything else is rethrown.
 */
export async function listenAs<T>(listeners: Listener[], listen: () => Promise<T>): Promise<T> {
  try {
    return await listen()
  } catch (error) {
    const failure = error as { code?: unknown; port?: unknown; address?: unknown } | null
    const code = failure?.code
    const first = listeners[0]
    if (typeof code !== 'string' || !LISTEN_CODES.has(code) || !first) throw error
    const listener = listeners.find((l) => l.port !== 0 && l.port === failure?.port) ?? first
    const host = typeof failure?.address === 'string' ? failure.address : listener.host
    const port = typeof failure?.port === 'number' ? failure.port : listener.port
    throw new ListenError(listener.variable, host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, code)
  }
}
