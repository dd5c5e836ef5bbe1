#!/usr/bin/env node
// The `latchkey` command (docs/cli.md), from latchkey's build: `npm ci` and `npm install` build it, `npm run build`
// again after a change to the sources.
import { existsSync } from 'node:fs'
import process from 'node:process'
import { fileURLToPath, URL } from 'node:url'

const cli = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write(
    `latchkey: not built: run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
  )
  process.exit(1)
}
await import(cli.href)
