import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'

/**
 * Vitest global setup: builds latchkey (`npm run build`, incremental) before any test runs, and again before each
 * rerun under `vitest` (watch mode), so that the tests that start it as `npm start` does (test/helpers/child.ts and
 * others) and the `latchkey` command run the sources of this run and not an older build.
 */
export function setup(project: TestProject): void {
  build()
  project.onTestsRerun(build)
}

function build(): void {
  execFileSync('npm', ['run', '--silent', 'build'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: 'inherit',
  })
}
