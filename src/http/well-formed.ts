/** A lone UTF-16 surrogate: a high one not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * True when every string of a parsed JSON value, keys included, is well-formed Unicode. Iterative, so that a deeply
 * nested body cannot overflow the stack; bounded by the body size limit.
 */
export function wellFormed(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return false
    } else if (Array.isArray(item)) {
      stack.push(...item)
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (LONE_SURROGATE.test(key)) return false
        stack.push(child)
      }
    }
  }
  return true
}
