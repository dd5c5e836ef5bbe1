import swagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Metrics } from '../app/metrics.js'
import { LatchkeyError } from '../domain/errors.js'
import { connectApi, type ConnectApiDeps } from './connect/plugin.js'
import { mqttAuthApi, type MqttAuthDeps } from './mqtt-auth/plugin.js'
import { sendConnectError } from './connect/errors.js'
import { outpostApi, type OutpostApiDeps } from './outpost/plugin.js'
import { v1Api, type V1ApiDeps } from './v1/plugin.js'

export interface HttpDeps extends ConnectApiDeps, OutpostApiDeps, V1ApiDeps {
  metrics: Metrics
  /** True once the database, the broker and the orchestrator's MQTT connection are up. */
  ready: () => boolean
  gauges: () => Record<string, number>
  logger: Logger
  version: string
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
  })
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim()
    if (text === '') return done(null, {})
    try {
      done(null, JSON.parse(text))
    } catch {
      done(new LatchkeyError('invalid_input', 'The request body is not valid JSON'), undefined)
    }
  })
  app.addHook('onRequest', async (request, reply) => {
    reply.header('seam-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.inc('http_requests_total', {
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    })
  })
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
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
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) =>
    reply.status(deps.ready() ? 200 : 503).send({ ok: deps.ready() }),
  )
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(deps.metrics.toPrometheus(deps.gauges())),
  )
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        type: 'not_found',
        message: `No route ${request.method} ${request.url.split('?')[0]}`,
        request_id: request.id,
      },
      ok: false,
    }),
  )
  app.setErrorHandler((error, request, reply) => sendConnectError(error, request, reply))

  await app.register(async (scope) => connectApi(scope, deps))
  await app.register(async (scope) => outpostApi(scope, deps), { prefix: '/api/v1' })
  await app.register(async (scope) => v1Api(scope, deps), { prefix: '/v1' })
  const { mqttAuth } = deps
  if (mqttAuth) await app.register(async (scope) => mqttAuthApi(scope, mqttAuth), { prefix: '/mqtt-auth' })
  return app
}
