import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SERVER_ENTRY, SERVER_NODE_FLAGS } from '../../src/compose/node-flags.js'

describe('the server node flags', () => {
  it('are the ones `npm start` runs node with, where package.json writes them out', () => {
    // Scenario: package.json's start script and SERVER_NODE_FLAGS (`latchkey serve`, the benchmark) → the same flags.
    const { scripts } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      scripts: { start: string }
    }
    expect(SERVER_NODE_FLAGS.length).toBeGreaterThan(0)
    expect(scripts.start).toBe(`exec node ${SERVER_NODE_FLAGS.join(' ')} ${SERVER_ENTRY}`)
  })
})
