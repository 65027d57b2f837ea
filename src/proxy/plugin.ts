import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from '@fastify/http-proxy'
import type { FrontendConfig, HashKey } from '../config/types.js'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import { normalizeHost, type RequestFacts } from '../routing/matcher.js'
import type { RouteDecision, Router } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import type { BackendRegistry } from '../upstream/registry.js'
import type { GatewayDispatcher, ProxyContext } from './dispatcher.js'
import { errorReply, findProxyError } from './error-reply.js'
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.js'

/** The routing state a request runs against; swapped whole on reload. */
export type RoutingState = { readonly router: Router, readonly registry: BackendRegistry }

export type ProxyPluginOptions = {
  /** Read once per request, at its start: a reload never changes a request midway. */
  readonly state: () => RoutingState
  readonly dispatcher: GatewayDispatcher
}

/** What the gateway decided for a request; read by the access log. */
export type RequestRecord = {
  decision: RouteDecision | undefined
  backend: Backend | undefined
  context: ProxyContext | undefined
  origin: string | undefined
  error: GatewayError | undefined
}

declare module 'fastify' {
  interface FastifyRequest { srvgate: RequestRecord }
}

const METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS', 'TRACE']

/**
 * The data plane: route in onRequest (404 / 503 answered here, never
 * forwarded), then @fastify/http-proxy with a dynamic upstream whose requests
 * go through the GatewayDispatcher. Built-in retries of reply-from are off:
 * they would go back to the same instance.
 */
export async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions): Promise<void> {
  const { dispatcher } = options
  // fastify would buffer text/plain (and hit bodyLimit); every body must stream through.
  app.removeAllContentTypeParsers()
  app.decorateRequest('srvgate', null as unknown as RequestRecord)

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    const record: RequestRecord = { decision: undefined, backend: undefined, context: undefined, origin: undefined, error: undefined }
    request.srvgate = record
    const host = hasOneHost(request.raw.rawHeaders) ? normalizeHost(request.headers.host) : undefined
    if (host === undefined) return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `bad Host header: ${JSON.stringify(request.headers.host ?? null)}`))
    const { router, registry } = options.state()
    const path = pathOf(request.url)
    const facts: RequestFacts = { host, path, method: request.method, header: (name) => firstValue(request.headers[name]) }
    const decision = router.route(facts)
    record.decision = decision
    if (decision === undefined) return await sendError(reply, new ProxyError(ErrorCode.ROUTE_NOT_FOUND, `no frontend matches ${host}${path}`))
    const backend = backendFor(registry, decision)
    if (backend === undefined) return await sendError(reply, new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'templated backends at their bound', templateName(decision)))
    record.backend = backend
    await backend.watcher.start()
    if (!backend.hasUsableInstance()) {
      return await sendError(reply, new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, `${backend.name}: ${backend.snapshot.status}`, backend.name))
    }
    record.context = {
      backend,
      method: request.method,
      hashKey: backend.options.hashOn === undefined ? undefined : hashKeyOf(backend.options.hashOn, request, path),
      tried: new Set(),
      instance: undefined,
      retries: 0,
      retryReasons: []
    }
  })

  app.addHook('onResponse', async (request, reply) => {
    const record = request.srvgate
    if (record === null) return
    if (record.origin !== undefined) dispatcher.release(record.origin)
    request.log.info({
      frontend: record.decision?.frontend.name,
      backend: record.backend?.name,
      instance: record.context?.instance?.key,
      method: request.method,
      host: request.headers.host,
      path: pathOf(request.url),
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      retries: record.context?.retries ?? 0,
      retryReasons: record.context?.retryReasons,
      error: record.error?.code
    }, 'request')
  })

  await app.register(httpProxy, {
    upstream: '',
    undici: dispatcher as never,
    disableCache: true,
    disableRequestLogging: true,
    internalRewriteLocationHeader: false,
    httpMethods: METHODS,
    replyOptions: {
      getUpstream: (request) => {
        const record = (request as FastifyRequest).srvgate
        record.origin = dispatcher.register(record.context as ProxyContext)
        return record.origin
      },
      rewriteRequestHeaders: (request, headers) => forwardRequestHeaders(headers, request.headers, {
        clientIp: request.ip,
        host: request.headers.host ?? '',
        requestId: request.id
      }),
      rewriteHeaders: (headers) => forwardResponseHeaders(headers),
      onError: (reply, { error }) => {
        const ours = findProxyError(error) ?? classifyReplyFromError(error)
        void sendError(reply as FastifyReply, ours)
      },
      // reply-from's own retries go back to the same instance; the dispatcher retries elsewhere.
      retryDelay: () => null
    },
    handler: (request, reply, dest, handlerOptions) => reply.from(stripPrefix(request.srvgate.decision?.frontend, dest), handlerOptions)
  })
}

async function sendError (reply: FastifyReply, error: GatewayError): Promise<FastifyReply> {
  const request = reply.request
  if (request.srvgate !== null && request.srvgate !== undefined) request.srvgate.error = error
  if (reply.sent || request.raw.destroyed) return reply
  const { status, body } = errorReply(error)
  if (status >= 500) request.log.warn({ code: error.code, detail: error.message }, 'request failed')
  return await reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body))
}

function classifyReplyFromError (error: unknown): ProxyError {
  const code = (error as { code?: string }).code ?? ''
  if (code.includes('TIMEOUT')) return new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, (error as Error).message, undefined, { cause: error })
  return new ProxyError(ErrorCode.UPSTREAM_ERROR, (error as Error).message, undefined, { cause: error })
}

function backendFor (registry: BackendRegistry, decision: RouteDecision): Backend | undefined {
  const target = decision.frontend.backend
  if (target.kind === 'static') return registry.get(target.name)
  return registry.template(target.template, decision.env as string)
}

function templateName (decision: RouteDecision): string {
  const target = decision.frontend.backend
  return target.kind === 'template' ? target.template.template.replaceAll('{env}', decision.env ?? '') : target.name
}

function stripPrefix (frontend: FrontendConfig | undefined, dest: string): string {
  const prefix = frontend?.rewrite.stripPrefix
  if (prefix === undefined || !dest.startsWith(prefix)) return dest
  const rest = dest.slice(prefix.length)
  return rest.startsWith('/') ? rest : `/${rest}`
}

/** RFC 9112 §3.2: a request with no Host, or more than one, is answered 400. */
function hasOneHost (rawHeaders: readonly string[]): boolean {
  let count = 0
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if ((rawHeaders[index] as string).length === 4 && (rawHeaders[index] as string).toLowerCase() === 'host') count++
  }
  return count === 1
}

function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}

function firstValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function hashKeyOf (key: HashKey, request: FastifyRequest, path: string): string | undefined {
  switch (key.kind) {
    case 'header': return firstValue(request.headers[key.name])
    case 'client-ip': return request.ip
    case 'path': return path
    case 'cookie': {
      const cookies = firstValue(request.headers.cookie)
      if (cookies === undefined) return undefined
      for (const part of cookies.split(';')) {
        const equals = part.indexOf('=')
        if (equals > 0 && part.slice(0, equals).trim() === key.name) return part.slice(equals + 1).trim()
      }
      return undefined
    }
  }
}
