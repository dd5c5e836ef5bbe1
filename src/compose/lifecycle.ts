/** Something started that must be stopped: its name is for the log when stopping it fails. */
interface Part {
  name: string
  close: () => Promise<void> | void
}

/**
 * The lifecycle stack of the composition root: each part is pushed once started and closed in reverse order (LIFO).
 * Every part closes even when an earlier one failed; failures go to `onError`, not swallowed. `close()` runs the
 * stack once: a second call waits for the same run and closes nothing twice.
 */
export class Lifecycle {
  private readonly parts: Part[] = []
  private closing: Promise<void> | undefined

  constructor(private readonly onError: (error: unknown, part: string) => void) {}

  /** Registers a started part. After `close()` it is closed at once: nothing started late is left running. */
  defer(name: string, close: () => Promise<void> | void): void {
    this.parts.push({ name, close })
    if (this.closing) this.closing = this.closing.then(() => this.drain())
  }

  close(): Promise<void> {
    this.closing ??= this.drain()
    return this.closing
  }

  private async drain(): Promise<void> {
    for (let part = this.parts.pop(); part; part = this.parts.pop()) {
      try {
        await part.close()
      } catch (error) {
        this.onError(error, part.name)
      }
    }
  }
}
