import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * latchkey's own directory, the one that holds its package.json. This module is two levels below it in the sources
 * (src/compose/) and three in the build (dist/src/compose/, docs/operations.md#the-build): the nearest directory
 * above with a package.json is it either way.
 */
export const PACKAGE_ROOT = findPackageRoot(new URL('../../', import.meta.url))

function findPackageRoot(start: URL): string {
  for (let dir = start; ; dir = new URL('../', dir)) {
    if (existsSync(new URL('package.json', dir))) return fileURLToPath(dir)
    if (dir.pathname === '/') throw new Error(`no package.json above ${fileURLToPath(start)}`)
  }
}
