import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Vitest global setup: builds latchkey (`npm run build`, incremental) before any test runs, so that the tests that
 * start it as `npm start` does (test/helpers/child.ts and others), and the `latchkey` command, run the sources of
 * this run and not an older build.
 */
export function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: 'inherit',
  })
}
