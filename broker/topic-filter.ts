/** MQTT topic filters (MQTT 3.1.1 §4.7): `+` one level, `#` this level and every one below, `/` between levels. */

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

/**
 * Whether a topic name matches a filter given as its levels. `+` matches one level, empty ones included
 * [MQTT-4.7.1-3]; `#` matches the parent level too (`a/#` matches `a`) [MQTT-4.7.1-2]. Topics starting with `$` are
 * not special here: the broker keeps wildcard subscriptions off them where the protocol says so.
 */
export function matchesLevels(filter: readonly string[], topic: string): boolean {
  let start = 0
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i] as string
    if (level === '#') return true
    if (start > topic.length) return false
    let end = topic.indexOf('/', start)
    if (end === -1) end = topic.length
    if (level !== '+' && (level.length !== end - start || !topic.startsWith(level, start))) return false
    start = end + 1
  }
  return start > topic.length
}
