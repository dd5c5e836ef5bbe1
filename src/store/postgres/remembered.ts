/** Rows remembered at most, per kind; the oldest is forgotten first. */
const REMEMBERED_MAX = 10_000

/** A row as this instance last wrote it, and the version that write left. */
export interface RememberedRow<T> {
  row: T
  version: number
}

/**
 * Rows as this instance last wrote them, each with the `version` that write left (docs/scale-out.md#attempts). A
 * change decided on a remembered row is written only if the row still carries that version; every other change of
 * the row raises it, and the change is then decided again on the row as it is.
 */
export class Remembered<T> {
  private readonly rows = new Map<string, RememberedRow<T>>()

  constructor(private readonly max = REMEMBERED_MAX) {}

  get(id: string): RememberedRow<T> | undefined {
    return this.rows.get(id)
  }

  set(id: string, row: T, version: number): void {
    this.rows.delete(id)
    this.rows.set(id, { row, version })
    if (this.rows.size > this.max) this.rows.delete(this.rows.keys().next().value as string)
  }

  forget(id: string): void {
    this.rows.delete(id)
  }

  clear(): void {
    this.rows.clear()
  }
}
