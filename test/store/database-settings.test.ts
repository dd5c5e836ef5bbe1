import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { CACHE_SIZE_KIB, openDatabase, PAGE_SIZE } from '../../src/store/sqlite/database.js'
import { it as base, tempDataDir } from '../helpers/latchkey.js'

// What the SQLite store's connection runs with (docs/operations.md#durability,
// docs/performance.md#a-smaller-page-cache): settings that are not stored in the file are set again on every open.

const it = base.extend<{ file: string }>({
  // eslint-disable-next-line no-empty-pattern
  file: async ({}, use) => {
    const dir = tempDataDir()
    await use(join(dir, 'latchkey.db'))
    rmSync(dir, { recursive: true, force: true })
  },
})

function settings(file: string): Record<string, unknown> {
  const db = openDatabase(file, ['CREATE TABLE notes (text TEXT NOT NULL)'])
  try {
    const read = (name: string): unknown => db.pragma(name, { simple: true })
    return {
      page_size: read('page_size'),
      journal_mode: read('journal_mode'),
      synchronous: read('synchronous'),
      cache_size: read('cache_size'),
    }
  } finally {
    db.close()
  }
}

describe('openDatabase', () => {
  it('opens a new file in WAL mode with 512-byte pages, NORMAL sync and a 2 MB page cache', ({ file }) => {
    // synchronous 1 = NORMAL; a negative cache_size is in KiB.
    expect(settings(file)).toEqual({
      page_size: PAGE_SIZE,
      journal_mode: 'wal',
      synchronous: 1,
      cache_size: -CACHE_SIZE_KIB,
    })
    expect(CACHE_SIZE_KIB).toBe(2_000)
  })

  it('sets the page cache and sync again when it reopens an existing file', ({ file }) => {
    settings(file)
    expect(settings(file)).toMatchObject({ synchronous: 1, cache_size: -CACHE_SIZE_KIB })
  })
})
