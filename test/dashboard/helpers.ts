import type { Browser, Page } from 'playwright-core'
import { test } from 'vitest'
import { launchChromium } from '../../scripts/chromium.js'
import { startTestLatchkey, type TestLatchkey } from '../helpers/latchkey.js'
import { Receiver } from '../webhooks/helpers.js'

/** Webhook receivers on loopback are allowed; the automatic retry is an hour away, so only a manual one happens. */
export const DASHBOARD_ENV = {
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_RETRY_SCHEDULE: '3600',
}

/** A phone-sized page (390 × 844) signed in with the workspace key. */
export async function signIn(browser: Browser, t: TestLatchkey, key = t.apiKey): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } })
  page.setDefaultTimeout(15_000)
  await page.goto(`${t.lk.httpUrl}/dashboard`)
  await page.getByLabel('API key').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
  return page
}

/** `it` with a latchkey, a webhook receiver and a headless Chromium per test, all stopped after it. */
export const it = test.extend<{ t: TestLatchkey; receiver: Receiver; browser: Browser }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  t: async ({}, use) => {
    const t = await startTestLatchkey({ env: DASHBOARD_ENV })
    await use(t)
    await t.close()
  },
  // eslint-disable-next-line no-empty-pattern
  receiver: async ({}, use) => {
    const receiver = await Receiver.start()
    await use(receiver)
    await receiver.close()
  },
  // eslint-disable-next-line no-empty-pattern
  browser: async ({}, use) => {
    const browser = await launchChromium()
    await use(browser)
    await browser.close()
  },
})
