import { randomBytes, randomUUID } from 'node:crypto'
import { describe, expect, it as plainIt } from 'vitest'
import { iso } from '../../src/domain/clock.js'
import { newWebhook, unsendableUrl, webhookUrlProblem, type Webhook } from '../../src/domain/webhook.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { TestLatchkey } from '../helpers/latchkey.js'
import { attemptsOf, createWebhook, it, waitForAttempts } from './helpers.js'

/** Invalid percent-encoding in the user info: WHATWG URLs parse it, but it does not decode. */
const BAD_USERINFO = 'http://%E0%A4%A@127.0.0.1:9/hook'

/** A webhook row written straight to the store, as one created before URLs were checked would be. */
async function storedWebhook(t: TestLatchkey, url: string, nowMs: number): Promise<Webhook> {
  const webhook = newWebhook(
    {
      webhook_id: randomUUID(),
      workspace_id: t.workspaceId,
      url,
      event_types: ['device.added'],
      secret: `whsec_${randomBytes(32).toString('base64')}`,
    },
    iso(nowMs),
  )
  await t.lk.store.webhooks.create(webhook)
  return webhook
}

async function addDevice(t: TestLatchkey): Promise<string> {
  await t.call('/devices/create', { name: 'front door' })
  const listed = await t.call('/events/list', { event_type: 'device.added', limit: 1 })
  return listed.body.events[0].event_id
}

describe('webhook URLs that cannot be sent to', () => {
  plainIt.each<[string, string | undefined, string | undefined]>([
    ['https://hooks.example.com/latchkey?x=%20y', undefined, undefined],
    ['https://user:p%40ss@hooks.example.com/', undefined, undefined],
    ['https://hooks.example.com/caf%C3%A9', undefined, undefined],
    [BAD_USERINFO, 'invalid percent-encoding in the user name or password (not UTF-8)', 'same'],
    ['http://%E0%A4@127.0.0.1/', 'invalid percent-encoding in the user name or password (not UTF-8)', 'same'],
    ['http://127.0.0.1/a%zz', undefined, 'invalid percent-encoding (a % must be followed by two hex digits)'],
    ['http://127.0.0.1/?q=1%', undefined, 'invalid percent-encoding (a % must be followed by two hex digits)'],
    ['not a url', 'not a valid URL', 'same'],
    ['ftp://127.0.0.1/', 'only http and https URLs are allowed, not ftp', 'same'],
  ])('%s: unsendable → %s; refused at create → %s', (url, unsendable, refused) => {
    // Scenario: what cannot be sent at all fails each attempt; create and update are stricter (any bad escape).
    expect(unsendableUrl(url)).toBe(unsendable)
    expect(webhookUrlProblem(url)).toBe(refused === 'same' ? unsendable : refused)
  })

  it('refuses invalid percent-encoding at create and update with 400 invalid_input', async ({ rig }) => {
    // Scenario: bad escapes in the user info, the path or the query → 400 naming the url field; nothing stored,
    // nothing changed.
    const t = await rig.latchkey()
    for (const url of [
      BAD_USERINFO,
      'http://%E0%A4@127.0.0.1:9/hook',
      'http://127.0.0.1:9/a%zz',
      'http://127.0.0.1:9/?q=1%',
    ]) {
      const res = await t.call('/webhooks/create', { url })
      expect(res.status, url).toBe(400)
      expect(res.body.error.type, url).toBe('invalid_input')
      expect(res.body.error.message, url).toMatch(/^url: invalid percent-encoding/)
      expect(res.body.error.validation_errors.url._errors, url).toHaveLength(1)
    }
    expect((await t.call('/webhooks/list', {})).body.webhooks).toEqual([])

    const webhook = await createWebhook(t, 'http://127.0.0.1:9/hook')
    const res = await t.call('/webhooks/update', { webhook_id: webhook.webhook_id, url: BAD_USERINFO })
    expect(res.status).toBe(400)
    expect(res.body.error).toMatchObject({ type: 'invalid_input', message: expect.stringMatching(/^url: invalid/) })
    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook.url).toBe(
      'http://127.0.0.1:9/hook',
    )
  })

  it('records each attempt to a stored unusable URL as failed, on the schedule, until the webhook is disabled', async ({
    rig,
  }) => {
    // Scenario: an old row whose URL does not decode; schedule 5 s, 10 s, 20 s and WEBHOOK_DISABLE_AFTER=3 → failed
    // attempts at 0, ~5 s and ~15 s with the reason, then the webhook is disabled and the delivery held; nothing in
    // between or after.
    const clock = new FakeClock(Date.now())
    const t = await rig.latchkey({
      clock,
      env: { WEBHOOK_RETRY_SCHEDULE: '5,10,20', WEBHOOK_DISABLE_AFTER: '3' },
    })
    const webhook = await storedWebhook(t, BAD_USERINFO, clock.now())
    const eventId = await addDevice(t)

    for (let n = 1; n <= 3; n++) {
      const attempts = await waitForAttempts(t, eventId, webhook.webhook_id, n)
      const last = attempts[n - 1]
      expect(last, `attempt ${n}`).toMatchObject({
        attempt_number: n,
        status: 'failed',
        response_code: null,
        error_message: 'invalid URL: invalid percent-encoding in the user name or password (not UTF-8)',
        will_retry: n < 3,
        attempted_at: iso(clock.now()),
      })
      const delivery = await t.lk.store.deliveries.get(eventId, webhook.webhook_id)
      if (n === 3) {
        expect(delivery).toMatchObject({ status: 'pending', held: true, next_attempt_at: null, attempt_count: 3 })
        break
      }
      // Due on the schedule (±20 % jitter), and not a millisecond before.
      const delay = Date.parse(delivery?.next_attempt_at ?? '') - clock.now()
      const nominal = [5000, 10_000][n - 1] as number
      expect(delay).toBeGreaterThanOrEqual(nominal * 0.8)
      expect(delay).toBeLessThanOrEqual(nominal * 1.2)
      clock.advance(delay - 1)
      expect(await attemptsOf(t, eventId, webhook.webhook_id)).toHaveLength(n)
      clock.advance(1)
    }

    expect((await t.call('/webhooks/get', { webhook_id: webhook.webhook_id })).body.webhook).toMatchObject({
      enabled: false,
      disabled_reason: 'consecutive_failures',
    })
    // Disabled: nothing more, however long we wait (a retry outside the schedule would show up here).
    for (let i = 0; i < 10; i++) clock.advance(60_000)
    await t.call('/webhooks/list', {})
    expect(await attemptsOf(t, eventId, webhook.webhook_id)).toHaveLength(3)
  })
})
