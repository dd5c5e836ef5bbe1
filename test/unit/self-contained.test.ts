import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PATHS = ['src', 'broker', 'devices', 'simulator', 'bench', 'test', 'docs', 'README.md']

// Built from pieces, so that this file does not name them itself.
const md = '.' + 'md'
const FORBIDDEN = ['SPEC' + md, 'SPEC' + ' §', 'NOTES' + md, 'STYLE' + md, 'SCALEOUT-' + 'NOTES' + md]

/** Tracked files, and new ones not ignored yet, under the paths a reader of the repository follows. */
function repositoryFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', ...PATHS], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  return [...new Set(out.split('\0').filter(Boolean))]
}

/** `file:line: name` for every line of `text` that names one of the forbidden files. */
function offences(file: string, text: string): string[] {
  const found: string[] = []
  text.split('\n').forEach((line, i) => {
    for (const name of FORBIDDEN) if (line.includes(name)) found.push(`${file}:${i + 1}: ${name}`)
  })
  return found
}

describe('the repository stands on its own', () => {
  it('names no document outside it in code, tests or docs', () => {
    // Scenario: every file under src/, broker/, devices/, simulator/, bench/, test/, docs/ and README.md is read;
    // none may point a reader at a file that is not in the repository.
    const files = repositoryFiles()
    expect(files).toContain('src/latchkey.ts')
    expect(files).toContain('docs/design.md')
    const found: string[] = []
    for (const file of files) {
      let text: string
      try {
        text = readFileSync(join(ROOT, file), 'utf8')
      } catch {
        continue // listed by git but deleted in the work tree
      }
      found.push(...offences(file, text))
    }
    expect(found).toEqual([])
  })

  it('reports the file and line of each kind of reference', () => {
    // Scenario: a comment citing a numbered section, and one line for each forbidden file name.
    const text = ['ok', `// the deadline rule (${'SPEC'} §4)`, ...FORBIDDEN.map((name) => `see ${name}`)].join('\n')
    // Line 7 (the scale-out notes) names the plain notes file too.
    const expected = ['x.ts:2: ' + FORBIDDEN[1], ...FORBIDDEN.map((name, i) => `x.ts:${i + 3}: ${name}`)]
    expected.push(`x.ts:7: ${FORBIDDEN[2]}`)
    expect(offences('x.ts', text).sort()).toEqual(expected.sort())
  })
})
