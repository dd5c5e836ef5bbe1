import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'

/** Another live latchkey holds DATA_DIR's SQLite database: one line naming DATA_DIR, pointing to DATABASE_URL. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `DATA_DIR: ${dataDir} is in use by another latchkey (pid ${pid}); give each instance its own DATA_DIR, ` +
        'or set DATABASE_URL (PostgreSQL) to run several instances on one database',
    )
    this.name = 'DataDirLockedError'
  }
}

export const LOCK_FILE = 'latchkey.lock'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function holder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Takes DATA_DIR/latchkey.lock for this process: created with O_EXCL and holding the pid, taken over when that pid
 * is no longer running (a crash or SIGKILL left it), refused with DataDirLockedError while it is. The database file
 * itself is not locked, so tools may read it while latchkey runs. Returns the release, which removes the file if it
 * is still this process's. In-process, one latchkey per DATA_DIR as well: a second one in the same process is refused.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE)
  const own = String(process.pid)
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(path, 'wx', 0o644)
      try {
        writeSync(fd, `${own}\n`)
      } finally {
        closeSync(fd)
      }
      let released = false
      return () => {
        if (released) return
        released = true
        if (holder(path) === process.pid) unlinkSync(path)
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const pid = holder(path)
    // A file without a pid yet: its writer is between open and write; count it as held.
    if (pid === undefined) {
      if (tries < 2) continue
      throw new DataDirLockedError(dataDir, 0)
    }
    if (alive(pid)) throw new DataDirLockedError(dataDir, pid)
    // Stale: its process is gone. Remove it and try again.
    try {
      unlinkSync(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
  throw new DataDirLockedError(dataDir, holder(path) ?? 0)
}
