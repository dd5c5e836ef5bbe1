import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, test as base } from 'vitest'
import { SERVER_ENTRY } from '../../src/compose/node-flags.js'
import { startChild, type ChildLatchkey } from '../helpers/child.js'
import { tempDataDir } from '../helpers/latchkey.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const it = base.extend<{ built: ChildLatchkey }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from this pattern
  built: async ({}, use) => {
    const dataDir = tempDataDir()
    const child = await startChild({ DATA_DIR: dataDir })
    await use(child)
    await child.kill()
    rmSync(dataDir, { recursive: true, force: true })
  },
})

describe('the build', () => {
  it('runs without the sources: what it reads from the package, it finds from dist/', async ({ built }) => {
    // Scenario: `node dist/src/main.js`, as `npm start` runs it → package.json's version in /openapi.json and the
    // dashboard's page, script and style, read from the package's directory three levels above the module.
    expect(SERVER_ENTRY.startsWith('dist/')).toBe(true)
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
    const doc = (await (await fetch(`${built.httpUrl}/openapi.json`)).json()) as { info: { version: string } }
    expect(doc.info.version).toBe(version)
    for (const [path, file] of [
      ['/dashboard', 'index.html'],
      ['/dashboard/app.js', 'app.js'],
      ['/dashboard/app.css', 'app.css'],
    ] as const) {
      const response = await fetch(`${built.httpUrl}${path}`)
      expect(response.status, path).toBe(200)
      expect(await response.text(), path).toBe(readFileSync(join(ROOT, 'src/http/dashboard/static', file), 'utf8'))
    }
  })
})
