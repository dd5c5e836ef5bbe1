import { describe, expect } from 'vitest'
import { VirtualLock } from '../../simulator/index.js'
import { createDevice } from '../helpers/devices.js'
import { ADMIN_KEY } from '../helpers/latchkey.js'
import { it, signIn } from './helpers.js'

/** The dashboard in real Chromium at phone width: every wait is a Playwright locator's own auto-wait. */
describe('dashboard in Chromium', () => {
  it('shows a lock come online, locks it live, and retries a failed delivery from the page', async ({
    t,
    receiver,
    browser,
  }) => {
    let answer = 500
    receiver.respond = () => ({ status: answer })
    const hook = await t.call('/webhooks/create', { url: receiver.url, event_types: ['lock.locked'] })
    expect(hook.status).toBe(200)

    const page = await signIn(browser, t)
    await page.locator('#live', { hasText: /^live$/ }).waitFor()
    // Nothing in the URL but the page's path: the key never travels there.
    expect(page.url()).toBe(`${t.lk.httpUrl}/dashboard`)

    const device = await createDevice(t, 'Front door')
    const card = page.locator(`[data-device-id="${device.deviceId}"]`)
    await card.locator('[data-field="online"]', { hasText: /^offline$/ }).waitFor()

    const lock = new VirtualLock({
      url: device.url,
      deviceId: device.deviceId,
      password: device.password,
      reconnectPeriodMs: 50,
      behaviour: { sendAccepted: true },
      initialState: { locked: false },
    })
    try {
      await lock.start()
      await card.locator('[data-field="online"]', { hasText: /^online$/ }).waitFor()
      await card.locator('[data-field="locked"]', { hasText: /^unlocked$/ }).waitFor()

      await page.getByRole('button', { name: 'Lock Front door', exact: true }).click()
      const attempt = page.locator('#attempts li', { hasText: 'Front door' }).first()
      await attempt.locator('[data-field="status"]', { hasText: /^success$/ }).waitFor()
      await attempt.locator('.timeline', { hasText: 'settled' }).waitFor()
      await card.locator('[data-field="locked"]', { hasText: /^locked$/ }).waitFor()
      await card.locator('[data-field="last-action"]', { hasText: 'success' }).waitFor()

      // lock.locked went to the receiver, which answered 500: the delivery shows as failed for now.
      const webhook = page.locator(`[data-webhook-id="${hook.body.webhook.webhook_id}"]`)
      const delivery = webhook.locator('.deliveries li').first()
      await delivery.locator('[data-field="status"]', { hasText: /^retrying$/ }).waitFor()
      await delivery.getByText('HTTP 500').waitFor()
      expect(receiver.received).toHaveLength(1)

      answer = 200
      await delivery.getByRole('button', { name: /^Retry lock\.locked / }).click()
      await delivery.locator('[data-field="status"]', { hasText: /^delivered$/ }).waitFor()
      await delivery.getByText('HTTP 200').waitFor()
      await delivery.getByText('#2 manual').waitFor()
      expect(receiver.received).toHaveLength(2)

      // Phone width: nothing sticks out sideways.
      // A string: the test's own TypeScript has no DOM types.
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')
      expect(overflow).toBeLessThanOrEqual(0)
    } finally {
      await lock.stop()
    }
  })

  it('signs in with the admin key and a chosen workspace', async ({ t, browser }) => {
    await createDevice(t, 'Back gate')
    const page = await signIn(browser, t, ADMIN_KEY)
    await page.getByRole('button', { name: /Default workspace/ }).click()
    await page.locator('#live', { hasText: /^live$/ }).waitFor()
    await page.locator('.device', { hasText: 'Back gate' }).waitFor()
    expect(page.url()).toBe(`${t.lk.httpUrl}/dashboard`)
  })

  it('refuses a wrong key and stays on the sign-in form', async ({ t, browser }) => {
    const page = await signIn(browser, t, 'seam_not_a_key')
    await page.getByRole('alert').getByText('That key was refused.').waitFor()
    expect(await page.locator('#board').isHidden()).toBe(true)
  })
})
