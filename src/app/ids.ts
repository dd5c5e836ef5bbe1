import { v7 as uuidv7 } from 'uuid'

/**
 * Every id latchkey mints. Time-ordered UUIDv7: consecutive inserts land at the end of each unique index instead of
 * on random pages, so a group commit dirties a few pages rather than one per row (docs/performance.md).
 */
export function newId(): string {
  return uuidv7()
}
