import { CliError, EXIT } from './errors.js'

/** A JSON body as the API returns it; commands read it field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

/** latchkey's HTTP API with one key: every failure becomes a CliError carrying its exit code. */
export class ApiClient {
  constructor(
    readonly url: string,
    private readonly key: string | undefined,
    private readonly timeoutMs = 120_000,
  ) {}

  post(path: string, body: unknown = {}): Promise<Json> {
    return this.request('POST', path, body)
  }

  get(path: string): Promise<Json> {
    return this.request('GET', path)
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Json> {
    if (!this.key)
      throw new CliError(EXIT.usage, 'no API key: set LATCHKEY_API_KEY or api_key in the config file (see docs/cli.md)')
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      throw new CliError(
        EXIT.auth,
        `cannot reach latchkey at ${this.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      )
    }
    const text = await res.text()
    let json: Json
    try {
      json = text ? JSON.parse(text) : {}
    } catch {
      throw new CliError(EXIT.auth, `${this.url} did not answer like latchkey (HTTP ${res.status})`)
    }
    if (res.ok) return json
    // Connect errors are { error: { type, message } }; the delivery API's are problem+json.
    const message = json?.error?.message ?? json?.detail ?? json?.message ?? `HTTP ${res.status}`
    if (res.status === 401) throw new CliError(EXIT.auth, `the key was refused: ${message}`)
    if (res.status === 403) throw new CliError(EXIT.auth, `not allowed: ${message}`)
    throw new CliError(EXIT.refused, message)
  }
}
