import type { LookupAddress } from 'node:dns'
import { describe, expect, it as plainIt } from 'vitest'
import { startLatchkey } from '../../src/latchkey.js'
import { createAddressPolicy, createUrlGuard } from '../../src/webhooks/ssrf.js'
import { request, startTestLatchkey, tempDataDir, testConfig } from '../helpers/latchkey.js'
import { createWebhook, it, waitForAttempts } from './helpers.js'

// Classification only: these addresses are looked at, never connected to.
const REFUSED: Array<[string, RegExp]> = [
  ['127.0.0.1', /loopback/],
  ['127.200.0.9', /loopback/],
  ['::1', /loopback/],
  ['::ffff:127.0.0.1', /loopback/],
  ['::ffff:7f00:1', /loopback/],
  ['0.0.0.0', /unspecified/],
  ['::', /unspecified/],
  ['10.1.2.3', /private/],
  ['172.16.0.1', /private/],
  ['172.31.255.255', /private/],
  ['192.168.1.1', /private/],
  ['::ffff:192.168.1.1', /private/],
  ['fd00::1', /private/],
  ['169.254.169.254', /link-local/],
  ['fe80::1', /link-local/],
  ['100.64.0.1', /CGNAT/],
  ['100.127.255.255', /CGNAT/],
  ['224.0.0.251', /multicast/],
  ['ff02::1', /multicast/],
  ['240.0.0.1', /reserved/],
  ['255.255.255.255', /reserved/],
  ['198.18.0.1', /benchmarking/],
  ['192.0.2.1', /documentation/],
  ['2001:db8::1', /documentation/],
  ['64:ff9b::7f00:1', /NAT64/],
  ['2002:7f00:1::', /6to4/],
]
const PUBLIC = ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']

describe('SSRF address policy', () => {
  plainIt.each(REFUSED)('refuses %s', (address, label) => {
    // Scenario: a reserved address without an allow-list → refused, with the kind of address named.
    expect(createAddressPolicy([])(address)).toMatch(label)
  })

  plainIt.each(PUBLIC)('lets %s through', (address) => {
    // Scenario: a public unicast address → allowed.
    expect(createAddressPolicy([])(address)).toBeUndefined()
  })

  plainIt('lets WEBHOOK_ALLOWED_CIDRS through, also as IPv4-mapped IPv6, and nothing more', () => {
    // Scenario: allow-list 127.0.0.0/8 and fd00::/8 → those pass; ::1 and 10/8 are still refused.
    const policy = createAddressPolicy(['127.0.0.0/8', 'fd00::/8'])
    expect(policy('127.0.0.1')).toBeUndefined()
    expect(policy('::ffff:127.0.0.1')).toBeUndefined()
    expect(policy('fd12::1')).toBeUndefined()
    expect(policy('::1')).toMatch(/loopback/)
    expect(policy('10.0.0.1')).toMatch(/private/)
  })

  plainIt('fails fast on an allow-list entry that is not a CIDR', () => {
    // Scenario: WEBHOOK_ALLOWED_CIDRS=999.1.1.1/8 → an error naming the variable at start-up.
    expect(() => createAddressPolicy(['999.1.1.1/8'])).toThrow(/WEBHOOK_ALLOWED_CIDRS: 999\.1\.1\.1\/8/)
  })

  plainIt('checks every address a name resolves to, and the scheme', async () => {
    // Scenario: a name with one public and one private address → refused; ftp:// → refused; unresolvable → refused.
    const answers: Record<string, LookupAddress[]> = {
      'mixed.example': [
        { address: '8.8.8.8', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ],
      'public.example': [{ address: '8.8.4.4', family: 4 }],
    }
    const guard = createUrlGuard({
      allowedCidrs: [],
      resolve: async (host) => {
        const found = answers[host]
        if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
        return found
      },
    })
    expect(await guard.refusal('https://mixed.example/hook')).toMatch(
      /mixed\.example resolves to 10\.0\.0\.7, a private address/,
    )
    expect(await guard.refusal('https://public.example/hook')).toBeUndefined()
    expect(await guard.refusal('ftp://public.example/hook')).toMatch(/only http and https/)
    expect(await guard.refusal('https://nowhere.example/hook')).toMatch(/cannot resolve nowhere\.example \(ENOTFOUND\)/)
    expect(await guard.refusal('not a url')).toMatch(/not a valid URL/)
    expect(await guard.refusal('http://[::ffff:127.0.0.1]:8080/')).toMatch(/loopback/)
    expect(await guard.refusal('http://2130706433/')).toMatch(/127\.0\.0\.1 is a loopback address/)
  })
})

describe('SSRF guard in the API and the dispatcher', () => {
  it('refuses loopback webhook URLs at creation when the allow-list is off', async ({ rig }) => {
    // Scenario: WEBHOOK_ALLOWED_CIDRS unset → every loopback spelling is a 400 invalid_input that says why.
    const t = await rig.latchkey({ env: { WEBHOOK_ALLOWED_CIDRS: '' } })
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://localhost:9/hook',
      'http://[::1]:9/hook',
      'http://[::ffff:7f00:1]:9/',
      'http://0x7f.1:9/',
      'http://0.0.0.0:9/',
    ]) {
      const res = await t.call('/webhooks/create', { url })
      expect(res.status, url).toBe(400)
      expect(res.body.error.type).toBe('invalid_input')
      expect(res.body.error.message, url).toMatch(/^url: .*(loopback|unspecified).*WEBHOOK_ALLOWED_CIDRS/)
      expect(res.body.error.validation_errors.url._errors).toHaveLength(1)
    }
    const ftp = await t.call('/webhooks/create', { url: 'ftp://127.0.0.1/hook' })
    expect(ftp.body.error.message).toMatch(/only http and https/)
    expect((await t.call('/webhooks/list', {})).body.webhooks).toEqual([])
  })

  it('refuses a loopback URL on update too', async ({ rig }) => {
    // Scenario: a webhook allowed at creation (by the allow-list) cannot be moved to a refused URL.
    const t = await rig.latchkey({ env: { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' } })
    const webhook = await createWebhook(t, 'http://127.0.0.1:9/hook')
    const res = await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, url: 'http://[::1]:9/hook' })
    expect(res.status).toBe(400)
    expect(res.body.error.message).toMatch(/loopback/)
  })

  it('refuses again at delivery time: an attempt recorded as failed, nothing sent', async ({ rig }) => {
    // Scenario: a webhook created while 127.0.0.0/8 was allowed; restarted without the allow-list → the next
    // delivery is refused before connecting and recorded with the reason.
    const dataDir = tempDataDir()
    const receiver = await rig.receiver()
    const first = await startTestLatchkey({ dataDir, keep: true, env: { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' } })
    const webhook = await createWebhook(first, receiver.url, ['device.added']).finally(() => first.close())
    const t = await rig.latchkey({ dataDir, env: { WEBHOOK_ALLOWED_CIDRS: '' } })
    const workspaceKey = first.apiKey
    await t.call('/devices/create', { name: 'after restart' }, workspaceKey)
    const events = await t.call('/events/list', { event_type: 'device.added' }, workspaceKey)
    const [attempt] = await waitForAttempts(t, events.body.events[0].event_id, webhook.webhook_id, 1)
    expect(attempt).toMatchObject({ status: 'failed', response_code: null, will_retry: true })
    expect(attempt?.error_message).toBe('refused: 127.0.0.1 is a loopback address; allow it with WEBHOOK_ALLOWED_CIDRS')
    expect(attempt?.signature).toMatch(/^v1,/)
    expect(receiver.received).toHaveLength(0)
  })

  it('refuses a name that resolved to an allowed address at creation and to loopback at delivery (DNS rebinding)', async ({
    rig,
  }) => {
    // Scenario: hooks.example resolves to 192.0.2.10 (allowed by the list) at creation, to 127.0.0.1 afterwards.
    let answer = '192.0.2.10'
    const dataDir = tempDataDir()
    const lk = await startLatchkey(testConfig(dataDir, { WEBHOOK_ALLOWED_CIDRS: '192.0.2.0/24' }), {
      resolve: async () => [{ address: answer, family: 4 }],
    })
    rig.defer(() => lk.close())
    const key = lk.bootstrap?.api_key ?? ''
    const created = await request(
      lk.httpUrl,
      '/webhooks/create',
      { url: 'http://hooks.example:9/hook', event_types: ['device.added'] },
      key,
    )
    expect(created.status).toBe(200)
    answer = '127.0.0.1'
    await request(lk.httpUrl, '/devices/create', { name: 'rebound' }, key)
    const events = await request(lk.httpUrl, '/events/list', { event_type: 'device.added' }, key)
    const attempts = () => lk.store.deliveries.attempts(events.body.events[0].event_id, created.body.webhook.webhook_id)
    await expect.poll(async () => (await attempts()).length).toBe(1)
    expect((await attempts())[0]?.error_message).toBe(
      'refused: hooks.example resolves to 127.0.0.1, a loopback address; allow it with WEBHOOK_ALLOWED_CIDRS',
    )
  })
})
