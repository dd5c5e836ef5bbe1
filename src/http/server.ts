import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { sameDigest, sha256 } from '../app/credentials.js'
import type { Metrics } from '../app/metrics.js'
import { LatchkeyError } from '../domain/errors.js'
import { createAuthGate, DEFAULT_RATE_LIMITS, type RateLimits } from './auth-gate.js'
import { connectApi, type ConnectApiDeps } from './connect/plugin.js'
import { mqttAuthApi, type MqttAuthDeps } from './mqtt-auth/plugin.js'
import { sendConnectError } from './connect/errors.js'
import { dashboard, type DashboardDeps } from './dashboard/plugin.js'
import { publicOrigin } from './public-url.js'
import { errorSenderFor, pathOf } from './surface.js'
import { wellFormed } from './well-formed.js'
import { outpostApi, type OutpostApiDeps } from './outpost/plugin.js'
import { v1Api, type V1ApiDeps } from './v1/plugin.js'

export interface HttpDeps extends ConnectApiDeps, OutpostApiDeps, V1ApiDeps, Omit<DashboardDeps, 'logger'> {
  metrics: Metrics
  /** True once the database, the broker and the orchestrator's MQTT connection are up. */
  ready: () => boolean
  /** When set, /metrics answers 401 without `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined
  logger: Logger
  version: string
  /** The externally visible origin (`PUBLIC_URL`) that links such as `next_page_url` are built on. */
  publicUrl?: string
  rateLimits?: RateLimits
  /** PEM certificate and key: serve HTTPS instead of HTTP (docs/operations.md, "TLS"). */
  https?: { cert: string | Buffer; key: string | Buffer }
  /** The broker callbacks, served only when MQTT_DEVICE_AUTH=http (docs/scale-out.md). */
  mqttAuth?: MqttAuthDeps | undefined
}

/**
 * The HTTP server: one fastify instance, one plugin per API surface, each with its own envelope and error shape.
 * Bodies are JSON; an empty body means `{}` whatever its content type, as the Seam SDK sends parameterless calls.
 */
export async function createHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    // Per-request access logs would dominate the hot path; failures are logged by the error handlers.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Errors fastify raises before routing (a path with bad percent-encoding) answer in the surface's own shape.
    frameworkErrors: (error, request, reply) => errorSenderFor(request)(error, request, reply),
    ...(deps.https ? { https: deps.https } : {}),
  }) as FastifyInstance
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim()
    if (text === '') return done(null, {})
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return done(new LatchkeyError('invalid_input', 'The request body is not valid JSON'), undefined)
    }
    // A lone surrogate can only come from a \uD800-style escape; it would be stored as U+FFFD, so it is refused.
    if (/\\u[dD][89a-fA-F]/.test(text) && !wellFormed(parsed)) {
      return done(new LatchkeyError('invalid_input', 'Strings must be well-formed Unicode (no lone surrogates)'))
    }
    done(null, parsed)
  })
  // Callback hooks, not async ones: on every request, an async hook costs fastify a promise and its settling.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('seam-request-id', request.id)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.inc('http_requests_total', {
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    })
    done()
  })
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined || request.body === null) request.body = {}
    done()
  })

  await app.register(swagger, {
    openapi: {
      info: { title: 'latchkey', version: deps.version, description: 'Connect API (Seam dialect) and delivery APIs' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  })

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }))
  app.get('/readyz', { schema: { hide: true } }, async (request, reply) =>
    deps.ready() ? { ok: true } : sendConnectError(new LatchkeyError('service_unavailable'), request, reply),
  )
  const metricsTokenHash = deps.metricsToken === undefined ? undefined : sha256(deps.metricsToken)
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (metricsTokenHash !== undefined) {
      const token = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? ''
      if (!sameDigest(sha256(token), metricsTokenHash)) {
        return reply
          .status(401)
          .header('www-authenticate', 'Bearer realm="metrics"')
          .type('text/plain; charset=utf-8')
          .send('METRICS_TOKEN is set: send it as Authorization: Bearer <token>\n')
      }
    }
    return reply.type(deps.metrics.contentType).send(await deps.metrics.render())
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  // The interactive reference of the same document (docs/api.md); /docs/json serves it too.
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } })

  app.setNotFoundHandler((request, reply) =>
    sendConnectError(new LatchkeyError('not_found', `No route ${request.method} ${pathOf(request)}`), request, reply),
  )
  app.setErrorHandler((error, request, reply) => errorSenderFor(request)(error, request, reply))

  const gate = await createAuthGate(app, deps.rateLimits ?? DEFAULT_RATE_LIMITS, (scope) =>
    deps.metrics.inc('http_rate_limited_total', { scope }),
  )
  app.decorate('publicOrigin', publicOrigin(deps.publicUrl))
  await app.register(async (scope) => connectApi(scope, deps, gate))
  await app.register(async (scope) => outpostApi(scope, deps, gate), { prefix: '/api/v1' })
  await app.register(async (scope) => v1Api(scope, deps, gate), { prefix: '/v1' })
  await app.register(async (scope) => dashboard(scope, deps))
  const { mqttAuth } = deps
  if (mqttAuth) await app.register(async (scope) => mqttAuthApi(scope, mqttAuth), { prefix: '/mqtt-auth' })
  return app
}
