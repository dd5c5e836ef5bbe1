import { request as httpRequest } from 'node:http'
import { test } from 'vitest'
import { ADMIN_KEY, startTestLatchkey, type ApiResponse, type TestLatchkey } from '../helpers/latchkey.js'

export { ADMIN_KEY }

export interface Workspace {
  apiKey: string
  workspaceId: string
}

/** A raw HTTP request: any path (bad percent-encoding included), any Host header, any body. */
export function raw(
  t: TestLatchkey,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<ApiResponse & { text: string }> {
  const url = new URL(t.lk.httpUrl)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          const headers = new Headers()
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v)
          let body: unknown
          try {
            body = text ? JSON.parse(text) : undefined
          } catch {
            body = text
          }
          resolve({ status: res.statusCode ?? 0, body, headers, text })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` }
}

/** A latchkey with a second workspace `b`, per test. */
export function withLatchkey(env: Record<string, string> = {}) {
  return test.extend<{ t: TestLatchkey; b: Workspace }>({
    // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
    t: async ({}, use) => {
      const t = await startTestLatchkey({ env })
      await use(t)
      await t.close()
    },
    b: async ({ t }, use) => {
      const created = await t.call('/workspaces/create', { name: 'B' }, ADMIN_KEY)
      await use({ apiKey: created.body.api_key.token, workspaceId: created.body.workspace.workspace_id })
    },
  })
}
