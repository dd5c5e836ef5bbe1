import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { Caller } from '../../app/workspaces.js'
import { workspaceOf } from '../../app/workspaces.js'
import { invalidInput, validationPath } from '../errors.js'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH'
export type Access = 'workspace' | 'admin'

export interface ConnectContext {
  caller: Caller
  /** The workspace the call acts on (a workspace key's own, or the admin's `seam-workspace` header). */
  readonly workspaceId: string
  request: FastifyRequest
}

export interface ConnectRouteSpec<S extends z.ZodObject> {
  path: string
  methods: Method[]
  input: S
  access: Access
  summary: string
  handler: (input: z.output<S>, ctx: ConnectContext) => Promise<Record<string, unknown> | void>
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller
  }
}

function baseType(schema: z.ZodType): string {
  let current: z.ZodType = schema
  while (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable) {
    current = current.unwrap() as z.ZodType
  }
  return current.def.type
}

/**
 * Query strings carry only strings: coerce them by the body schema so GET and POST validate alike. Keys the schema
 * does not declare are dropped, as a POST body's are (`constructor` and `__proto__` included); a repeated scalar
 * parameter takes its first value.
 */
export function coerceQuery(schema: z.ZodObject, query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(query)) {
    if (!Object.hasOwn(schema.shape, key)) continue
    const type = baseType(schema.shape[key] as z.ZodType)
    const first = Array.isArray(value) ? value[0] : value
    if (type === 'array' || type === 'tuple')
      out[key] = (Array.isArray(value) ? value : String(value).split(',')).filter((v) => v !== '')
    else if (type === 'number') out[key] = Number(first)
    else if (type === 'boolean') out[key] = first === 'true' ? true : first === 'false' ? false : first
    else if (type === 'object' && typeof first === 'string') out[key] = safeJson(first)
    else out[key] = first
  }
  return out
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function parseInput<S extends z.ZodObject>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw ?? {})
  if (parsed.success) return parsed.data
  throw invalidInput(parsed.error.issues.map((issue) => ({ path: validationPath(issue.path), message: issue.message })))
}

/**
 * Declares one Connect API route on every method it answers. POST/PUT/PATCH read a JSON body (empty = `{}`), GET
 * the query string; both are validated by the same zod schema, which also documents the route in /openapi.json.
 */
export function connectRoute<S extends z.ZodObject>(app: FastifyInstance, spec: ConnectRouteSpec<S>): void {
  for (const method of spec.methods) {
    app.route({
      method,
      url: spec.path,
      schema: { summary: spec.summary, ...(method === 'GET' ? {} : { body: spec.input }) },
      config: { access: spec.access },
      handler: async (request, reply) => {
        const input =
          method === 'GET'
            ? parseInput(spec.input, coerceQuery(spec.input, request.query as Record<string, unknown>))
            : (request.body as z.output<S>)
        const caller = request.caller as Caller
        const header = request.headers['seam-workspace']
        const ctx: ConnectContext = {
          caller,
          request,
          // Resolved on use: admin-only routes need no workspace.
          get workspaceId() {
            return workspaceOf(caller, typeof header === 'string' ? header : undefined)
          },
        }
        const result = await spec.handler(input, ctx)
        return reply.send({ ...(result ?? {}), ok: true })
      },
    })
  }
}
