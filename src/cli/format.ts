/** Plain-text tables for people; `--json` bypasses them. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)))
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...cells.map(line)].join('\n')
}

export function yesNo(value: boolean | null | undefined, yes: string, no: string): string {
  if (value === null || value === undefined) return '-'
  return value ? yes : no
}

/** `+123 ms` after `from`, for timelines. */
export function offset(from: string, to: string | null | undefined): string {
  if (!to) return ''
  return `+${Math.max(0, Date.parse(to) - Date.parse(from))} ms`
}
