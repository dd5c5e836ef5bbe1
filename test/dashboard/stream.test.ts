import { describe, expect, test, vi } from 'vitest'
import { createDevice } from '../helpers/devices.js'
import { ADMIN_KEY, startTestLatchkey, type TestLatchkey } from '../helpers/latchkey.js'

/** An open /dashboard/stream read as text; `text` grows as events arrive. */
async function openStream(t: TestLatchkey, headers: Record<string, string>) {
  const controller = new AbortController()
  const res = await fetch(`${t.lk.httpUrl}/dashboard/stream`, { headers, signal: controller.signal })
  const state = { text: '', ended: false }
  const reading = (async () => {
    const reader = (res.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader()
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        state.text += value
      }
    } catch {
      // aborted
    }
    state.ended = true
  })()
  return { res, state, reading, abort: () => controller.abort() }
}

const it = test.extend<{ t: TestLatchkey }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  t: async ({}, use) => {
    const t = await startTestLatchkey()
    await use(t)
    await t.close()
  },
})

describe('/dashboard/stream', () => {
  it('requires a key in the Authorization header; a key in the query string is not read', async ({ t }) => {
    const none = await fetch(`${t.lk.httpUrl}/dashboard/stream`)
    expect(none.status).toBe(401)
    const query = await fetch(`${t.lk.httpUrl}/dashboard/stream?key=${t.apiKey}&api_key=${t.apiKey}`)
    expect(query.status).toBe(401)
    const admin = await fetch(`${t.lk.httpUrl}/dashboard/stream`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    expect(admin.status).toBe(400)
    const retry = await fetch(`${t.lk.httpUrl}/dashboard/retry`, { method: 'POST', body: '{}' })
    expect(retry.status).toBe(401)
  })

  it("streams its own workspace's changes and never another's", async ({ t }) => {
    const other = await t.call('/workspaces/create', { name: 'other' }, ADMIN_KEY)
    const otherKey: string = other.body.api_key.token
    const stream = await openStream(t, { authorization: `Bearer ${t.apiKey}` })
    try {
      expect(stream.res.status).toBe(200)
      expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/)
      const foreign = await createDevice(t, 'foreign door', {}, otherKey)
      const own = await createDevice(t, 'own door')
      await vi.waitFor(() => expect(stream.state.text).toContain(own.deviceId), { timeout: 10_000, interval: 10 })
      // The admin naming the other workspace sees that one, through seam-workspace.
      const admin = await openStream(t, {
        authorization: `Bearer ${ADMIN_KEY}`,
        'seam-workspace': other.body.workspace.workspace_id,
      })
      await vi.waitFor(() => expect(admin.state.text).toContain(foreign.deviceId), { timeout: 10_000, interval: 10 })
      admin.abort()
      expect(stream.state.text).not.toContain(foreign.deviceId)
      expect(stream.state.text).not.toContain(other.body.workspace.workspace_id)
      expect(admin.state.text).not.toContain(own.deviceId)
    } finally {
      stream.abort()
    }
  })

  test('ends open streams when latchkey closes', async () => {
    const t = await startTestLatchkey()
    const stream = await openStream(t, { authorization: `Bearer ${t.apiKey}` })
    try {
      await vi.waitFor(() => expect(stream.state.text).toContain('event: webhooks'), { timeout: 10_000, interval: 10 })
    } finally {
      // Resolves only if the open stream does not hold the server open.
      await t.close()
    }
    await stream.reading
    expect(stream.state.ended).toBe(true)
  })
})
