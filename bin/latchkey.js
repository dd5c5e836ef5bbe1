#!/usr/bin/env node
// The `latchkey` command (docs/cli.md): runs the TypeScript CLI through tsx, with no build step.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
