import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy from '@fastify/http-proxy'
import type { FrontendConfig, HashKey } from '../config/types.js'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import type { RouteDecision } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import { newProxyContext, type GatewayDispatcher, type ProxyContext } from './dispatcher.js'
import { firstValue, pathOf, routeRequest, type RequestLine, type RoutingState } from './route-request.js'
import { errorReply, findProxyError } from './error-reply.js'
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.js'

export type ProxyPluginOptions = {
  /** Read once per request, at its start: a reload never changes a request midway. */
  readonly state: () => RoutingState
  readonly dispatcher: GatewayDispatcher
  /** Called once per answered request (metrics). */
  readonly onFinished?: (frontend: string | undefined, backend: string | undefined, status: number) => void
  /** While draining, responses carry `Connection: close` so clients move to another replica. */
  readonly isDraining?: () => boolean
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
    const routed = await routeRequest(options.state(), request.raw as RequestLine, (decision, backend) => {
      record.decision = decision
      record.backend = backend
    })
    if (routed instanceof ProxyError) return await sendError(reply, routed)
    const { backend, path } = routed
    record.context = newProxyContext(backend, request.method, backend.options.hashOn === undefined ? undefined : hashKeyOf(backend.options.hashOn, request, path))
  })

  app.addHook('onSend', async (_request, reply, payload) => {
    if (options.isDraining?.() === true) reply.header('connection', 'close')
    return payload
  })

  app.addHook('onResponse', async (request, reply) => {
    const record = request.srvgate
    if (record === null) return
    if (record.origin !== undefined) dispatcher.release(record.origin)
    options.onFinished?.(record.decision?.frontend.name, record.backend?.metricLabel, reply.statusCode)
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
  // Not request.raw.destroyed: undici destroys the request body stream on failure while the client still waits.
  if (reply.sent || reply.raw.destroyed || request.raw.socket?.destroyed !== false) return reply
  const { status, body } = errorReply(error)
  if (status >= 500) request.log.warn({ code: error.code, detail: error.message }, 'request failed')
  return await reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body))
}

function classifyReplyFromError (error: unknown): ProxyError {
  const code = (error as { code?: string }).code ?? ''
  if (code.includes('TIMEOUT')) return new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, (error as Error).message, undefined, { cause: error })
  return new ProxyError(ErrorCode.UPSTREAM_ERROR, (error as Error).message, undefined, { cause: error })
}

function stripPrefix (frontend: FrontendConfig | undefined, dest: string): string {
  const prefix = frontend?.rewrite.stripPrefix
  if (prefix === undefined || !dest.startsWith(prefix)) return dest
  const rest = dest.slice(prefix.length)
  return rest.startsWith('/') ? rest : `/${rest}`
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
