import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { sameDigest, sha256 } from '../../app/credentials.js'
import { createMqttAuthDecisions, emqxAcl, type Decision, type MqttAuthDeps } from './decide.js'

export type { MqttAuthDeps } from './decide.js'

/** The header that carries `MQTT_AUTH_SECRET`; brokers that cannot add headers pass `?secret=` instead. */
export const SECRET_HEADER = 'x-latchkey-auth-secret'

/*
 * Request bodies as each broker documents them (docs/scale-out.md). Unknown fields are ignored; EMQX renders its
 * body templates as strings, so numbers are accepted in either form.
 */
const text = z.string()
const optionalText = z.string().nullish()

const EmqxAuthn = z.object({ username: optionalText, password: optionalText, clientid: optionalText })
const EmqxAuthz = z.object({
  username: optionalText,
  clientid: optionalText,
  topic: text,
  action: z.enum(['publish', 'subscribe']),
})

const VerneRegister = z.object({ username: optionalText, password: optionalText, client_id: optionalText })
const VernePublish = z.object({ username: optionalText, client_id: optionalText, topic: text })
const VerneSubscribe = z.object({
  username: optionalText,
  client_id: optionalText,
  topics: z.array(z.object({ topic: text, qos: z.coerce.number().int() })).max(100),
})

const GoAuthUser = z.object({ username: optionalText, password: optionalText, clientid: optionalText })
const GoAuthAcl = z.object({
  username: optionalText,
  clientid: optionalText,
  topic: text,
  acc: z.coerce.number().int(),
})

/** mosquitto-go-auth access levels: 1 read, 2 write, 3 read and write, 4 subscribe. */
const GO_AUTH_ACC = { 1: ['receive'], 2: ['publish'], 3: ['receive', 'publish'], 4: ['subscribe'] } as const

function secretOf(request: FastifyRequest): string | undefined {
  const header = request.headers[SECRET_HEADER]
  if (typeof header === 'string') return header
  const query = (request.query as Record<string, unknown> | undefined)?.secret
  return typeof query === 'string' ? query : undefined
}

/**
 * The broker callbacks of `MQTT_DEVICE_AUTH=http`, registered under `/mqtt-auth`: EMQX 5 (HTTP authenticator and
 * authorizer), VerneMQ webhooks and mosquitto-go-auth's HTTP backend in JSON mode. Each answers in its broker's
 * documented shape; a request without the shared secret gets 401, which every one of them treats as a refusal.
 */
export async function mqttAuthApi(app: FastifyInstance, deps: MqttAuthDeps): Promise<void> {
  const decisions = createMqttAuthDecisions(deps)
  const secretHash = sha256(deps.secret)
  const count = (broker: string, hook: string, result: 'allow' | 'deny') =>
    deps.metrics.inc('mqtt_auth_callbacks_total', { broker, hook, result })

  app.addHook('onRequest', async (request, reply) => {
    const given = secretOf(request)
    // Both sides hashed first: equal lengths, so the comparison runs in constant time whatever was sent.
    if (given !== undefined && sameDigest(sha256(given), secretHash)) return
    deps.metrics.inc('mqtt_auth_secret_refused_total')
    return reply.status(401).send({ error: `missing or wrong ${SECRET_HEADER}` })
  })

  /** Parses a body; a malformed one is refused (counted) in the caller's shape, never thrown. */
  function parse<T>(schema: z.ZodType<T>, request: FastifyRequest): T | undefined {
    const parsed = schema.safeParse(request.body)
    if (parsed.success) return parsed.data
    deps.metrics.inc('mqtt_refusals_total', { reason: 'malformed' })
    return undefined
  }

  async function allowed(
    principal: Decision,
    action: 'publish' | 'subscribe' | 'receive',
    topic: string,
  ): Promise<boolean> {
    return principal.ok && decisions.check(principal.principal, action, topic).ok
  }

  const hidden = { schema: { hide: true } }

  // EMQX 5 HTTP authenticator: 200 with {result, is_superuser, acl}; the acl is checked before any authorizer.
  app.post('/emqx/authn', hidden, async (request) => {
    const body = parse(EmqxAuthn, request)
    const decision = body ? await decisions.login(body.username, body.password, body.clientid) : undefined
    count('emqx', 'authn', decision?.ok ? 'allow' : 'deny')
    if (!decision?.ok) return { result: 'deny' }
    return { result: 'allow', is_superuser: false, acl: emqxAcl(decision.principal) }
  })

  // EMQX 5 HTTP authorizer: one publish or subscribe (EMQX passes `$share/g/t` as `t`; both forms are checked).
  app.post('/emqx/authz', hidden, async (request) => {
    const body = parse(EmqxAuthz, request)
    const ok = body
      ? await allowed(await decisions.principalOf(body.username, body.clientid), body.action, body.topic)
      : false
    count('emqx', 'authz', ok ? 'allow' : 'deny')
    return { result: ok ? 'allow' : 'deny' }
  })

  // VerneMQ webhooks: one endpoint, dispatched on the `vernemq-hook` header; the MQTT 5 hooks end in `_m5`.
  app.post('/vernemq', hidden, async (request, reply: FastifyReply) => {
    const hook = String(request.headers['vernemq-hook'] ?? '')
    const v5 = hook.endsWith('_m5')
    const notAllowed = { result: { error: 'not_allowed' } }
    switch (v5 ? hook.slice(0, -3) : hook) {
      case 'auth_on_register': {
        const body = parse(VerneRegister, request)
        const decision = body ? await decisions.login(body.username, body.password, body.client_id) : undefined
        count('vernemq', hook, decision?.ok ? 'allow' : 'deny')
        return decision?.ok ? { result: 'ok' } : notAllowed
      }
      case 'auth_on_publish': {
        // The payload (base64) is not needed: authorisation depends on who publishes where.
        const body = parse(VernePublish, request)
        const ok = body
          ? await allowed(await decisions.principalOf(body.username, body.client_id), 'publish', body.topic)
          : false
        count('vernemq', hook, ok ? 'allow' : 'deny')
        return ok ? { result: 'ok' } : notAllowed
      }
      case 'auth_on_subscribe': {
        const body = parse(VerneSubscribe, request)
        if (!body) {
          count('vernemq', hook, 'deny')
          return notAllowed
        }
        const principal = await decisions.principalOf(body.username, body.client_id)
        // Each refused filter comes back with qos 128 (MQTT 5: reason 135); the granted ones keep theirs.
        const topics = []
        for (const { topic, qos } of body.topics)
          topics.push({ topic, qos: (await allowed(principal, 'subscribe', topic)) ? qos : v5 ? 135 : 128 })
        count('vernemq', hook, topics.every((t) => t.qos < 128) ? 'allow' : 'deny')
        return { result: 'ok', topics }
      }
      default:
        deps.metrics.inc('mqtt_refusals_total', { reason: 'malformed' })
        return reply.status(400).send({ result: { error: `unknown vernemq-hook ${JSON.stringify(hook)}` } })
    }
  })

  // mosquitto-go-auth HTTP backend, JSON mode: 200 with {Ok, Error}.
  const goAuth = (ok: boolean, error = 'not allowed') => ({ Ok: ok, Error: ok ? '' : error })
  app.post('/goauth/user', hidden, async (request) => {
    const body = parse(GoAuthUser, request)
    const decision = body ? await decisions.login(body.username, body.password, body.clientid) : undefined
    count('goauth', 'user', decision?.ok ? 'allow' : 'deny')
    return goAuth(decision?.ok === true, decision && !decision.ok ? decision.reason : 'malformed')
  })
  app.post('/goauth/superuser', hidden, async () => {
    // No superusers: the service, too, is held to its ACL.
    count('goauth', 'superuser', 'deny')
    return goAuth(false)
  })
  app.post('/goauth/acl', hidden, async (request) => {
    const body = parse(GoAuthAcl, request)
    const actions = body
      ? (GO_AUTH_ACC as Record<number, readonly ('receive' | 'publish' | 'subscribe')[]>)[body.acc]
      : undefined
    let ok = false
    if (body && actions) {
      const principal = await decisions.principalOf(body.username, body.clientid)
      ok = true
      for (const action of actions) ok &&= await allowed(principal, action, body.topic)
    }
    count('goauth', 'acl', ok ? 'allow' : 'deny')
    return goAuth(ok)
  })
}
