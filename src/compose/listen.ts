/**
 * A listener that could not open its port, named by the variable that sets it, so that start-up fails with one line
 * an operator can act on (docs/operations.md#start-up) rather than a stack trace.
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

const LISTEN_CODES = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'])

/** Runs `listen`; a failure to bind becomes a ListenError naming `variable`. Anything else is rethrown as is. */
export async function listenAs<T>(variable: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen()
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === 'string' && LISTEN_CODES.has(code)) {
      throw new ListenError(variable, host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, code)
    }
    throw error
  }
}
