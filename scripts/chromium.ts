import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Debian's chromium package; scripts/ensure-test-deps.sh installs it when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium'

/** A headless Chromium for the dashboard test and the README screenshot. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`${CHROMIUM_PATH} is missing: run scripts/ensure-test-deps.sh (apt-get install chromium)`)
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}
