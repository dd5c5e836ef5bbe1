import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createHttpSender,
  MAX_RESPONSE_BODY_BYTES,
  type HttpSender,
  type SendOutcome,
} from '../../src/webhooks/http-sender.js'
import { createUrlGuard } from '../../src/webhooks/ssrf.js'
import { systemClock } from '../../src/app/system-clock.js'
import type { Clock } from '../../src/domain/clock.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** A raw TCP server that answers each request with the bytes `answer` returns; records the requests. */
async function rawServer(
  answer: (request: string, socket: Socket, n: number) => void,
): Promise<{ url: string; requests: string[]; connections: number; server: TcpServer }> {
  const state = { url: '', requests: [] as string[], connections: 0, server: createTcpServer() }
  state.server.on('connection', (socket) => {
    state.connections++
    socket.on('error', () => {})
    let buffered = ''
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1')
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        const request = buffered.slice(0, end + 4 + length)
        buffered = buffered.slice(end + 4 + length)
        state.requests.push(Buffer.from(request, 'latin1').toString('utf8'))
        if (!socket.writableEnded) answer(request, socket, state.requests.length)
      }
    })
  })
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/in?x=1`
  return state
}

function bodyOf(outcome: SendOutcome): string {
  return outcome.kind === 'response' ? outcome.response.body : outcome.kind
}

describe('webhook HTTP client', () => {
  const closers: Array<() => unknown> = []
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
  })

  function sender(timeoutMs = 5000, clock: Clock = new FakeClock(), pipelining?: number): HttpSender {
    const guard = createUrlGuard({ allowedCidrs: ['127.0.0.0/8'] })
    const s = createHttpSender({ timeoutMs, clock, guard, ...(pipelining ? { pipelining } : {}) })
    closers.push(() => s.close())
    return s
  }

  async function server(answer: Parameters<typeof rawServer>[0]) {
    const made = await rawServer(answer)
    closers.push(() => new Promise((resolve) => made.server.close(resolve)))
    return made
  }

  it('sends one well-formed POST and reuses the connection', async () => {
    // Scenario: ten requests in a row → kept-alive connections reused, each request line, host, headers and body as sent.
    const s = await server((_r, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    const client = sender()
    for (let i = 0; i < 10; i++) {
      const out = await client.send({ url: s.url, headers: { 'webhook-id': `evt_${i}` }, body: `{"n":${i},"é":1}` })
      expect(out).toMatchObject({ kind: 'response', response: { code: 200, body: 'ok' } })
    }
    // undici may open a second connection while the first is being released; never one per request.
    expect(s.connections).toBeLessThanOrEqual(2)
    const host = new URL(s.url).host
    const [head, body] = (s.requests[9] as string).split('\r\n\r\n')
    const lines = (head as string).split('\r\n')
    expect(lines[0]).toBe('POST /in?x=1 HTTP/1.1')
    expect(lines.map((l) => l.toLowerCase())).toEqual(
      expect.arrayContaining([`host: ${host}`, 'webhook-id: evt_9', 'content-length: 14']),
    )
    expect(body).toBe('{"n":9,"é":1}')
  })

  it('recovers when the server closed a kept-alive connection', async () => {
    // Scenario: the server answers, then hangs up the kept-alive connection → the next request still succeeds.
    const s = await server((_r, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))
    const client = sender()
    for (let i = 0; i < 2; i++)
      expect(await client.send({ url: s.url, headers: {}, body: '{}' })).toMatchObject({ response: { code: 200 } })
    expect(s.connections).toBe(2)
  })

  it('reports connection errors and early hang-ups as network failures, and timeouts as timeouts', async () => {
    // Scenario: a closed port; a server that hangs up without answering; a server that never answers (fake clock).
    const closed = await server(() => {})
    const port = (closed.server.address() as AddressInfo).port
    await new Promise((resolve) => closed.server.close(resolve))
    const refused = await sender().send({ url: `http://127.0.0.1:${port}/`, headers: {}, body: '{}' })
    expect(refused).toMatchObject({
      kind: 'no_response',
      failure: { stage: 'network', code: 'ECONNREFUSED', message: expect.stringMatching(/ECONNREFUSED/) },
    })

    const rude = await server((_r, socket) => socket.destroy())
    expect(await sender().send({ url: rude.url, headers: {}, body: '{}' })).toMatchObject({
      kind: 'no_response',
      failure: { stage: 'network', message: expect.any(String) },
    })

    const clock = new FakeClock()
    const silent = await server(() => {})
    const pending = sender(1000, clock).send({ url: silent.url, headers: {}, body: '{}' })
    await new Promise((resolve) => silent.server.once('connection', resolve))
    clock.advance(1000)
    expect(await pending).toMatchObject({
      kind: 'no_response',
      failure: { stage: 'timeout', message: 'timed out after 1000 ms' },
    })
  })

  it('times out each request at its own deadline, however many are in flight', async () => {
    // Scenario: a server that never answers; A sent at 0 s, B at 36 s, C at 54 s, timeout 60 s (fake clock) → A stops
    // at 60 s, B at 96 s, C at 114 s, none earlier (one timer serves them all).
    const clock = new FakeClock()
    const silent = await server(() => {})
    const client = sender(60_000, clock)
    const outcomes: string[] = []
    const send = (name: string) =>
      client.send({ url: silent.url, headers: {}, body: '{}' }).then((out) => {
        outcomes.push(`${name}:${out.kind === 'no_response' ? out.failure.stage : out.kind}`)
      })
    const sent = [send('A')]
    clock.advance(36_000)
    sent.push(send('B'))
    clock.advance(18_000)
    sent.push(send('C'))
    await vi.waitFor(() => expect(silent.requests).toHaveLength(3))
    clock.advance(5_999)
    await new Promise((resolve) => setImmediate(resolve))
    expect(outcomes).toEqual([])
    clock.advance(1)
    await sent[0]
    expect(outcomes).toEqual(['A:timeout'])
    clock.advance(35_999)
    await new Promise((resolve) => setImmediate(resolve))
    expect(outcomes).toEqual(['A:timeout'])
    clock.advance(1)
    await sent[1]
    expect(outcomes).toEqual(['A:timeout', 'B:timeout'])
    clock.advance(18_000)
    await sent[2]
    expect(outcomes).toEqual(['A:timeout', 'B:timeout', 'C:timeout'])
  })

  it('with pipelining, sends the requests in flight to one webhook on one connection', async () => {
    // Scenario: pipelining 4; one request, then three more while it waits; the server answers once all four are in →
    // all four on one connection, answered in order, each to its own request. Without pipelining: four connections.
    const answerAll = async (pipelining: number | undefined) => {
      const held: Array<{ socket: Socket; n: number }> = []
      const s = await server((_r, socket, n) => {
        held.push({ socket, n })
        if (held.length < 4) return
        for (const { socket: to, n: i } of held) to.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${i}`)
      })
      const client = sender(5000, new FakeClock(), pipelining)
      const send = (i: number) => client.send({ url: s.url, headers: { 'webhook-id': `evt_${i}` }, body: `{"n":${i}}` })
      const first = send(1)
      await vi.waitFor(() => expect(s.requests).toHaveLength(1))
      const outcomes = await Promise.all([first, send(2), send(3), send(4)])
      return { connections: s.connections, requests: s.requests, bodies: outcomes.map(bodyOf) }
    }
    const pipelined = await answerAll(4)
    expect(pipelined.connections).toBe(1)
    expect(pipelined.requests.map((r) => /webhook-id: (\S+)/.exec(r)?.[1])).toEqual([
      'evt_1',
      'evt_2',
      'evt_3',
      'evt_4',
    ])
    expect(pipelined.bodies).toEqual(['1', '2', '3', '4'])
    expect((await answerAll(undefined)).connections).toBe(4)
  })

  it('with pipelining, sends the requests behind the oldest unanswered one again when their connection is lost', async () => {
    // Scenario: pipelining 3; one request, then two more behind it on its connection; the server answers the first and
    // hangs up → the first succeeds; the second, the oldest still waiting, fails as it would alone; the third goes out
    // again on a new connection and succeeds there.
    const held: Socket[] = []
    const s = await server((request, socket, n) => {
      const i = /"n":(\d)/.exec(request)?.[1] ?? ''
      if (n > 3) return void socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${i}`)
      held.push(socket)
      if (n === 3) (held[0] as Socket).end('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1')
    })
    const client = sender(5000, new FakeClock(), 3)
    const send = (i: number) => client.send({ url: s.url, headers: {}, body: `{"n":${i}}` })
    const first = send(1)
    await vi.waitFor(() => expect(s.requests).toHaveLength(1))
    const outcomes = await Promise.all([first, send(2), send(3)])
    expect(outcomes.map(bodyOf)).toEqual(['1', 'no_response', '3'])
    expect(s.connections).toBe(2)
    expect(s.requests.map((r) => /"n":(\d)/.exec(r)?.[1])).toEqual(['1', '2', '3', '3'])
  })

  it('keeps a response header named __proto__ as a header', async () => {
    // Scenario: the response carries `__proto__: x` and `X-A: 1` → both are own headers; the object's prototype is untouched.
    const s = await server((_r, socket) =>
      socket.write('HTTP/1.1 200 OK\r\n__proto__: x\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n'),
    )
    const out = await sender().send({ url: s.url, headers: {}, body: '{}' })
    if (out.kind !== 'response') throw new Error(`no response: ${JSON.stringify(out)}`)
    expect(Object.hasOwn(out.response.headers, '__proto__')).toBe(true)
    expect(out.response.headers['__proto__']).toBe('x')
    expect(out.response.headers['x-a']).toBe('1')
    expect(Object.getPrototypeOf(out.response.headers)).toBe(Object.prototype)
  })

  it('keeps the status of a response whose body does not finish in time', async () => {
    // Scenario: 200 with Content-Length 100 but 3 bytes sent → at the (real, 300 ms) timeout: code 200, the 3 bytes.
    const s = await server((_r, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'))
    expect(await sender(300, systemClock).send({ url: s.url, headers: {}, body: '{}' })).toMatchObject({
      kind: 'response',
      response: { code: 200, body: 'abc' },
    })
  })
  it('keeps the first 64 KiB of a larger body and the headers lowercased, repeats as lists; the next request goes out', async () => {
    // Scenario: 200 with two Set-Cookie headers and a 200 KiB body; then a second request → the
    // first 64 KiB of the body, the headers as undici's request() gives them; the connection cut short is replaced.
    const big = 'x'.repeat(200 * 1024)
    const s = await server((_r, socket, n) =>
      socket.write(
        n === 1
          ? `HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Trace: t\r\nset-cookie: b=2\r\nContent-Length: ${big.length}\r\n\r\n${big}`
          : 'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
      ),
    )
    const client = sender()
    const first = await client.send({ url: s.url, headers: {}, body: '{}' })
    expect(first.kind).toBe('response')
    if (first.kind !== 'response') return
    expect(first.response.code).toBe(200)
    expect(first.response.body).toBe(big.slice(0, MAX_RESPONSE_BODY_BYTES))
    expect(first.response.headers).toMatchObject({ 'set-cookie': ['a=1', 'b=2'], 'x-trace': 't' })
    expect(await client.send({ url: s.url, headers: {}, body: '{}' })).toMatchObject({
      kind: 'response',
      response: { code: 201, body: 'ok' },
    })
  })

  it('types what it cannot send by stage instead of throwing', async () => {
    // Scenario: bad percent-encoding in the user info, ftp://, an IP literal the guard refuses, a name that resolves
    // to loopback → invalid_url, invalid_url, refused, refused; nothing reaches the server.
    const s = await server((_r, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))
    const port = new URL(s.url).port
    const guard = createUrlGuard({ allowedCidrs: [], resolve: async () => [{ address: '127.0.0.1', family: 4 }] })
    const strict = createHttpSender({ timeoutMs: 5000, clock: new FakeClock(), guard })
    closers.push(() => strict.close())
    const send = (url: string) => strict.send({ url, headers: {}, body: '{}' })
    expect(await send(`http://%E0%A4%A@127.0.0.1:${port}/`)).toEqual({
      kind: 'no_response',
      failure: { stage: 'invalid_url', message: expect.stringMatching(/^invalid URL: invalid percent-encoding/) },
      durationMs: 0,
    })
    expect(await send(`ftp://127.0.0.1:${port}/`)).toMatchObject({ failure: { stage: 'invalid_url' } })
    expect(await send(`http://127.0.0.1:${port}/`)).toMatchObject({
      failure: { stage: 'refused', message: expect.stringMatching(/^refused: 127\.0\.0\.1 is a loopback address/) },
    })
    expect(await send(`http://rebound.example:${port}/`)).toMatchObject({
      failure: {
        stage: 'refused',
        message: expect.stringMatching(/^refused: rebound\.example resolves to 127\.0\.0\.1/),
      },
    })
    expect(s.requests).toHaveLength(0)
  })
  it('reports anything else that throws as an internal failure, never a rejection', async () => {
    // Scenario: a guard that throws while checking the host → stage internal with its message; send() resolves.
    const guard = createUrlGuard({ allowedCidrs: ['127.0.0.0/8'] })
    const broken = createHttpSender({
      timeoutMs: 5000,
      clock: new FakeClock(),
      guard: {
        ...guard,
        literalRefusal: () => {
          throw new Error('guard broke')
        },
      },
    })
    closers.push(() => broken.close())
    expect(await broken.send({ url: 'http://127.0.0.1:9/', headers: {}, body: '{}' })).toEqual({
      kind: 'no_response',
      failure: { stage: 'internal', message: 'internal error: guard broke' },
      durationMs: 0,
    })
  })
})
