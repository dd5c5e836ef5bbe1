import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'

export interface WalPages {
  pageSize: number
  /** WAL frames `work` wrote: each is one page written whole. */
  frames: number
  commits: number
  /** Frames by the table or index their page belongs to, most first. */
  byTree: Array<[name: string, frames: number]>
}

/**
 * The pages SQLite's WAL receives while `work` runs, by b-tree (docs/performance.md, "Pages per attempt at 1 in
 * flight, by b-tree"). The WAL is emptied first, and a reader holds a snapshot of `table` meanwhile so that no
 * checkpoint copies or restarts the WAL; every frame's page is then mapped to its table or index through SQLite's
 * `dbstat`.
 */
export async function walPages(filename: string, table: string, work: () => Promise<void>): Promise<WalPages> {
  const reader = new Database(filename)
  reader.pragma('wal_checkpoint(TRUNCATE)')
  reader.exec('BEGIN')
  reader.prepare(`SELECT count(*) FROM ${table}`).get()
  await work()
  const wal = readFileSync(`${filename}-wal`)
  reader.exec('COMMIT')
  reader.close()

  // The WAL's header, then frames of a 24-byte header (page number, database size after a commit, salts) and a page.
  const pageSize = wal.readUInt32BE(8)
  const salt = [wal.readUInt32BE(16), wal.readUInt32BE(20)]
  const pages: number[] = []
  let commits = 0
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (wal.readUInt32BE(offset + 8) !== salt[0] || wal.readUInt32BE(offset + 12) !== salt[1]) break
    pages.push(wal.readUInt32BE(offset))
    if (wal.readUInt32BE(offset + 4) !== 0) commits++
  }

  const names = new Map<number, string>()
  const probe = new Database(filename, { readonly: true })
  for (const row of probe.prepare('SELECT name, pageno FROM dbstat').all() as Array<{ name: string; pageno: number }>)
    names.set(row.pageno, row.name)
  probe.close()
  const byTree = new Map<string, number>()
  for (const page of pages) {
    const name = page === 1 ? 'sqlite_schema (page 1)' : (names.get(page) ?? 'freelist')
    byTree.set(name, (byTree.get(name) ?? 0) + 1)
  }
  return { pageSize, frames: pages.length, commits, byTree: [...byTree].sort((a, b) => b[1] - a[1]) }
}
