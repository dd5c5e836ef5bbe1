import { redactUrl } from '../config.js'
import { UnavailableError } from '../domain/errors.js'

/**
 * Errors the store layer raises, whatever its engine. They say what went wrong with the data, never how to answer
 * it: each HTTP surface maps them to its own error shape (src/http/errors.ts).
 */

/** The database cannot be reached right now; what was asked is either committed whole or not at all. */
export class StoreUnavailableError extends UnavailableError {
  override readonly name = 'StoreUnavailableError'
}

/** The database could not be reached at start-up; the message names DATABASE_URL without its password. */
export class DatabaseUnreachableError extends Error {
  constructor(url: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    super(`cannot reach the PostgreSQL database at DATABASE_URL=${redactUrl(url)}: ${reason}`, { cause })
    this.name = 'DatabaseUnreachableError'
  }
}
