/** Exit codes of the `latchkey` command (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The action attempt settled as an error, or did not settle in time. */
  attemptFailed: 1,
  /** Bad arguments, a missing key, or an unreadable or unsafe config file. */
  usage: 2,
  /** The key was refused, or latchkey could not be reached. */
  auth: 3,
  /** latchkey refused the request (not found, invalid input, …). */
  refused: 4,
} as const

export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}
