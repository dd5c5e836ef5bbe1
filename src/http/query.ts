import type { FastifyRequest } from 'fastify'

/**
 * A `preValidation` hook: a query parameter given more than once (`?limit=1&limit=2`) takes its first value, unless
 * it is one of `repeatable`, whose schema takes a list. The same rule as the Connect API's GET routes (docs/api.md).
 */
export function firstOfRepeated(repeatable: ReadonlySet<string> = new Set()) {
  return async (request: FastifyRequest): Promise<void> => {
    const query = request.query as Record<string, unknown> | undefined
    if (!query || typeof query !== 'object') return
    for (const key of Object.keys(query)) {
      const value = query[key]
      if (Array.isArray(value) && !repeatable.has(key)) query[key] = value[0]
    }
  }
}
