import { METHODS, type IncomingMessage, type ServerResponse } from 'node:http'
import { constants as http2Constants } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FrontendConfig } from '../config/types.js'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import type { RouteDecision } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import type { Split } from '../upstream/split.js'
import type { Clock } from '../util/clock.js'
import { accessRecordOf, type AccessLog } from './access-log.js'
import type { UpstreamPools } from './upstream-pools.js'
import { failoverOf, newProxyContext, type ProxyContext } from './failover-request.js'
import { ClientGone } from './client-gone.js'
import { normalizeHost } from '../routing/matcher.js'
import { hasBody, hostHeaderOf, pathOf, requestKeyOf, routeRequest, type RequestLine, type Routed, type RoutingState } from './route-request.js'
import { errorReply, findProxyError } from './error-reply.js'
import { clientIpOf, forwardRequestHeaders } from './headers.js'
import { ResponseWriter } from './response-writer.js'
import { BodyBudget, bufferableLength, receiveBody } from './body-buffer.js'
import type { Readable } from 'node:stream'
import { TlsListener } from '../tls/listener.js'
import { failureCode } from './retry-policy.js'

/** One answered request, for the metrics. */
export type FinishedRequest = {
  readonly frontend: string | undefined
  readonly backend: string | undefined
  /** The backend's own name (per environment for templated backends). */
  readonly backendName: string | undefined
  readonly status: number
  readonly durationSeconds: number
  /** HTTP/1.1 or HTTP/2, for requests that got as far as a request line. */
  readonly protocol?: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2'
  /** The split that chose the backend, if any (its metric label: the template for a templated split). */
  readonly split?: string | undefined
  /** A failover target (another datacenter's name) served the request instead of the backend's own discovery. */
  readonly failoverTarget?: string | undefined
}

export type ProxyPluginOptions = {
  /** Read once per request, at its start: a reload never changes a request midway. */
  readonly state: () => RoutingState
  readonly dispatcher: UpstreamPools
  readonly accessLog: AccessLog
  readonly clock: Clock
  /** Called once per request, answered or abandoned (metrics). */
  readonly onFinished?: (request: FinishedRequest) => void
  /** Called when a request starts and when it ends (the in-flight gauge). */
  readonly onStarted?: () => void
  /** While draining, responses carry `Connection: close` so clients move to another replica. */
  readonly isDraining?: () => boolean
  /** The process's budget for bodies received whole (client.bufferTotalBytes). */
  readonly bodies: BodyBudget
  /** Plain-HTTP keep-alive connections between requests (edge/idle-connections.ts): told when each request starts and ends. */
  readonly idle?: { readonly busy: (socket: Socket) => void, readonly idle: (socket: Socket) => void }
}

/** What the gateway decided for a request; read by the access log. */
export type RequestRecord = {
  decision: RouteDecision | undefined
  backend: Backend | undefined
  /** The split that chose `backend`, if any. */
  split: Split | undefined
  context: ProxyContext | undefined
  error: GatewayError | undefined
  readonly state: RoutingState
  readonly clientIp: string
  readonly isPeerTrusted: boolean
  /** It came over the HTTPS listener (HTTP/2 or HTTP/1.1 on TLS). */
  readonly isSecure: boolean
  readonly startedMs: number
  isFinished: boolean
  /** Bytes of the process's body budget this request's body holds (0: none; given back when it finishes). */
  bufferedBytes: number
}

declare module 'fastify' {
  interface FastifyRequest { srvgate: RequestRecord }
}

/**
 * Every method Node's parser accepts, except CONNECT (srvgate is not a forward
 * proxy: app.ts answers it 405). Registered without a body parser: bodies of
 * every method stream through as they came, GET and DELETE included.
 */
const PROXIED_METHODS: readonly string[] = METHODS.filter((method) => method !== 'CONNECT')
const PROXIED_METHOD_SET: ReadonlySet<string> = new Set(PROXIED_METHODS)

/** A method srvgate forwards (what Node's HTTP/1.1 parser knows, CONNECT aside). */
export function isProxiedMethod (method: string): boolean { return PROXIED_METHOD_SET.has(method) }

/**
 * The fastify reply behind a raw response under way, so a body Node fails to
 * parse is answered by its own request. A symbol on the response, not a
 * WeakMap: one WeakMap entry per request was measured at ~35 µs a request in
 * garbage collection (ephemeron tables), a property costs nothing.
 */
const REPLY = Symbol('srvgate.reply')
type WithReply = ServerResponse & { [REPLY]?: FastifyReply }

/**
 * Node's parser failed on a connection (app.ts's clientErrorHandler). When a
 * request is under way there (its body was malformed), that request answers
 * 400 itself, with its own id and its one access-log line, and true is
 * returned; otherwise the caller answers on the raw socket.
 */
export function refuseRequestUnderWay (socket: Duplex, error: GatewayError): boolean {
  const response = (socket as { _httpMessage?: WithReply | null })._httpMessage
  const reply = response?.[REPLY]
  if (reply === undefined) return false
  if (reply.sent || reply.raw.headersSent) socket.destroy()
  else void sendError(reply, error)
  return true
}

/** Bytes a socket had read and written when its previous request ended (keep-alive accounting); a symbol, like REPLY. */
const MARK = Symbol('srvgate.bytes')
type MarkedSocket = Socket & { [MARK]?: { read: number, written: number } }

/**
 * The data plane: route in onRequest (404 / 503 answered here, never
 * forwarded), then one route for every method and path that sends the
 * request through the UpstreamPools and writes the answer straight to the
 * client (response-writer.ts). A request whose client leaves is abandoned
 * wherever it is, and its access-log line says 499.
 */
export async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions): Promise<void> {
  const { dispatcher } = options
  // No body parsing: fastify would buffer text/plain (and hit bodyLimit) and drop GET bodies.
  app.removeAllContentTypeParsers()
  for (const method of PROXIED_METHODS) app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
  app.decorateRequest('srvgate', null as unknown as RequestRecord)

  const finish = (request: FastifyRequest, reply: FastifyReply, isAnswered: boolean): void => {
    const record = request.srvgate
    if (record === null || record.isFinished) return
    record.isFinished = true
    if (record.bufferedBytes > 0) options.bodies.release(record.bufferedBytes)
    if (!isAnswered && record.error === undefined) record.error = new ProxyError(ErrorCode.CLIENT_GONE, 'the client closed its connection before the answer')
    const status = isAnswered ? reply.statusCode : 499
    const durationMs = Math.round((options.clock.now() - record.startedMs) * 100) / 100
    const protocol = request.raw.httpVersionMajor === 2 ? 'HTTP/2' : request.raw.httpVersionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1'
    const context = record.context
    const failover = failoverOf(context)
    options.onFinished?.({ frontend: record.decision?.frontend.name, backend: record.backend?.metricLabel, backendName: record.backend?.name, status, durationSeconds: durationMs / 1000, protocol, split: record.split?.metricLabel, failoverTarget: failover?.lookup.name })
    if (!options.accessLog.isEnabled) return
    const { bytesIn, bytesOut } = socketBytes(request.raw)
    options.accessLog.record(accessRecordOf(request.raw, {
      requestId: request.id,
      clientIp: record.clientIp,
      status,
      durationMs,
      bytesIn,
      bytesOut,
      frontend: record.decision?.frontend.name,
      backend: record.backend?.name,
      split: record.split?.name,
      failover: failover?.name,
      instance: context?.instance?.key,
      upstreamStatus: context?.upstreamStatus,
      upstreamMs: context?.upstreamMs === undefined ? undefined : Math.round(context.upstreamMs * 100) / 100,
      retries: context?.retries ?? 0,
      retryReasons: context?.retryReasons.length === 0 ? undefined : context?.retryReasons,
      error: record.error?.code,
      // The why, for the operator (may name an internal address; never sent to the client).
      errorDetail: record.error?.message
    }))
  }

  // A callback hook, not an async one: a request routed at once costs no promise.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    const state = options.state()
    const peerIp = request.raw.socket?.remoteAddress ?? ''
    const isTrusted = (address: string): boolean => state.config.trustedProxies.matches(address)
    const isSecure = request.raw.httpVersionMajor === 2 || (request.raw.socket as { encrypted?: boolean } | null)?.encrypted === true
    const record: RequestRecord = {
      decision: undefined,
      backend: undefined,
      split: undefined,
      context: undefined,
      error: undefined,
      state,
      clientIp: clientIpOf(peerIp, request.headers['x-forwarded-for'], isTrusted),
      isPeerTrusted: isTrusted(peerIp),
      isSecure,
      startedMs: options.clock.now(),
      isFinished: false,
      bufferedBytes: 0
    }
    request.srvgate = record
    ;(reply.raw as WithReply)[REPLY] = reply
    options.onStarted?.()
    const socket = request.raw.socket
    const isPlain = !isSecure && socket !== null
    if (isPlain) options.idle?.busy(socket)
    // 'close' comes once the answer is written, or earlier when the client leaves:
    // then the request is abandoned in every layer it reached.
    const clientGone = new ClientGone()
    // Answered: 'finish' came, and for HTTP/2 the stream was not reset (Node's compat layer
    // emits 'finish' even for a stream the client cancelled; its rstCode tells).
    let isAnswered = false
    reply.raw.once('finish', () => { isAnswered = true })
    reply.raw.once('close', () => {
      // Node's compat layer also emits 'finish' for a stream that closed before its end was
      // written (a reset, or the whole connection dropped: rstCode 0 then): only an answer
      // whose end was written and not reset counts.
      const rstCode = (reply.raw as { stream?: { rstCode?: number } }).stream?.rstCode
      if ((rstCode !== undefined && rstCode !== 0) || !reply.raw.writableEnded) isAnswered = false
      if (!isAnswered) clientGone.fire()
      finish(request, reply, isAnswered)
      if (isPlain) options.idle?.idle(socket)
    })
    const tls = state.config.tls
    if (isSecure && tls?.hsts !== undefined) reply.header('strict-transport-security', tls.hsts)
    // A reply sent from the hook ends the chain: done() is not called after it.
    if (!isSecure && tls?.redirectHttp === true && state.config.listen.https !== undefined) {
      void redirectToHttps(request, reply, state.config.listen.https.port)
      return
    }
    if (request.raw.url === '*') {
      void answerAsterisk(request, reply)
      return
    }
    const proceed = (routed: Routed | ProxyError): void => {
      if (clientGone.isGone) {
        // Nothing is forwarded for a client that has left while routing waited on DNS.
        reply.hijack()
        done()
        return
      }
      if (routed instanceof ProxyError) {
        void sendError(reply, routed)
        return
      }
      const limits = state.config.client
      const start = (body: Readable | Buffer | undefined): void => {
        const { backend, path } = routed
        record.context = newProxyContext(backend, request.method, {
          hashKey: backend.options.hashOn === undefined ? undefined : requestKeyOf(backend.options.hashOn, request.headers, path, record.clientIp),
          split: routed.split,
          splitKey: routed.splitKey,
          clientGone,
          body,
          bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs,
          minBodyRate: limits.minBodyRate
        })
        done()
      }
      if (!hasBody(request.raw)) {
        start(undefined)
        return
      }
      // A body that fits is received whole before an instance connection is taken (nginx's
      // proxy_request_buffering): a slow upload then holds memory the budget bounds, not a connection.
      const length = bufferableLength(request.headers, limits.bufferBodyBytes)
      if (length === undefined || !options.bodies.reserve(length, limits.bufferTotalBytes)) {
        start(request.raw)
        return
      }
      record.bufferedBytes = length
      void receiveBody(request.raw, length, { idleTimeoutMs: limits.bodyIdleTimeoutMs, clock: options.clock, clientGone }).then((received) => {
        if (!(received instanceof ProxyError)) start(received)
        else if (received.code !== ErrorCode.CLIENT_GONE) void sendError(reply, received)
        else {
          record.error = received
          reply.hijack()
          done()
        }
      })
    }
    const routed = routeRequest(state, request.raw as RequestLine, {
      clientGone,
      clientIp: record.clientIp,
      certificateNames: isSecure ? TlsListener.servedTo(request.raw.socket)?.names : undefined,
      onDecision: (decision, backend, split) => {
        record.decision = decision
        record.backend = backend
        record.split = split
      }
    })
    if (routed instanceof Promise) routed.then(proceed, done)
    else proceed(routed)
  })

  app.addHook('onSend', async (request, reply, payload) => {
    if (options.isDraining?.() === true && request.raw.httpVersionMajor !== 2) reply.header('connection', 'close')
    return payload
  })

  /** The route behind every method and path: the request goes to the backend, the answer straight to the client. */
  const forward = (request: FastifyRequest, reply: FastifyReply): void => {
    const record = request.srvgate
    const context = record.context
    // Answered in onRequest (a refusal, OPTIONS *), or the client left: nothing to send.
    if (context === undefined || reply.sent) return
    const headers = forwardRequestHeaders(request.headers, request.headers, {
      peerIp: request.raw.socket?.remoteAddress ?? '',
      isPeerTrusted: record.isPeerTrusted,
      clientIp: record.clientIp,
      host: hostHeaderOf(request.headers) ?? '',
      proto: record.isSecure ? 'https' : 'http',
      requestId: request.id
    })
    const writer = new ResponseWriter(reply.raw as ServerResponse, {
      addOwnHeaders: (headers) => { addOwnHeaders(headers, request.id, record, options.isDraining?.() === true && request.raw.httpVersionMajor !== 2) },
      onCommit: () => { reply.hijack() },
      sendTimeoutMs: record.state.config.client.sendTimeoutMs,
      clock: options.clock,
      onSendTimeout: () => { record.error ??= new ProxyError(ErrorCode.CLIENT_TIMEOUT, `the client read none of the answer for client.sendTimeout (${record.state.config.client.sendTimeoutMs} ms)`) },
      onError: (error) => {
        // Errors from the dispatcher are ProxyErrors; anything else gets its code from the one vocabulary.
        const ours = findProxyError(error) ?? new ProxyError(failureCode((error as { cause?: unknown }).cause ?? error), error.message, undefined, { cause: error })
        void sendError(reply, ours)
      }
    })
    // The origin is the instance's, set per attempt; the body comes from the context.
    dispatcher.forward(context, { origin: '', method: request.method, path: upstreamPath(request.url, record.decision?.frontend), headers, body: null }, writer)
  }
  app.route({ method: [...PROXIED_METHODS], url: '/', handler: forward })
  app.route({ method: [...PROXIED_METHODS], url: '/*', handler: forward })
}

/**
 * x-request-id, Strict-Transport-Security on HTTPS, and, while draining,
 * Connection: close on HTTP/1.1 (HTTP/2 has no such field; its connections
 * are told to go with GOAWAY): what onRequest and onSend give fastify's own replies.
 */
function addOwnHeaders (headers: string[], requestId: string, record: RequestRecord, closesConnection: boolean): void {
  headers.push('x-request-id', requestId)
  const hsts = record.isSecure ? record.state.config.tls?.hsts : undefined
  if (hsts !== undefined) headers.push('strict-transport-security', hsts)
  if (closesConnection) headers.push('connection', 'close')
}

/** tls.redirectHttp: the same host (without its port), path and query, on the HTTPS listener, 308 (the method is kept). */
async function redirectToHttps (request: FastifyRequest, reply: FastifyReply, httpsPort: number): Promise<FastifyReply> {
  const host = normalizeHost(hostHeaderOf(request.headers))
  if (host === undefined) return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `bad Host header: ${JSON.stringify(hostHeaderOf(request.headers) ?? null)}`))
  const authority = httpsPort === 443 ? host : `${host}:${httpsPort}`
  const target = request.raw.url?.startsWith('/') === true ? request.raw.url : pathOf(request.raw.url ?? '/')
  return await reply.code(308).header('location', `https://${authority}${target}`).header('content-length', '0').send()
}

/** The target sent to the instance: origin-form, `stripPrefix` applied to the path, the query kept as sent. */
function upstreamPath (url: string, frontend: FrontendConfig | undefined): string {
  const queryAt = url.indexOf('?')
  const path = pathOf(url)
  const query = queryAt < 0 ? '' : url.slice(queryAt)
  return stripPrefix(frontend, path) + query
}

export async function sendError (reply: FastifyReply, error: GatewayError): Promise<FastifyReply> {
  const request = reply.request
  // The first error is the cause: a later one (the body's stream failing after a 400) is its consequence.
  if (request.srvgate !== null && request.srvgate !== undefined) request.srvgate.error ??= error
  // Not request.raw.destroyed: undici destroys the request body stream on failure while the client still waits.
  if (reply.sent || reply.raw.destroyed || request.raw.socket?.destroyed !== false) return reply
  // Nobody is left to read an answer.
  if (error.code === ErrorCode.CLIENT_GONE) return reply
  const { status, body, retryAfterS } = errorReply(error)
  // A request refused mid-body leaves unread bytes on the connection: close it.
  const leavesBodyUnread = error.code === ErrorCode.CLIENT_TIMEOUT || (hasBody(request.raw) && !request.raw.complete)
  const isHttp2 = request.raw.httpVersionMajor === 2
  // HTTP/2 has no Connection field (Node refuses to send one): the stream is reset instead, below.
  if (leavesBodyUnread && !isHttp2) reply.header('connection', 'close')
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS))
  const sent = await reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body))
  // The answer is out; RST_STREAM NO_ERROR tells the client to stop sending (RFC 9113 §8.1). Without
  // it Node keeps the stream open while the client's side is, the request never finishes and its
  // connection stays busy for as long as the client likes.
  if (leavesBodyUnread && isHttp2) resetStream(request.raw)
  return sent
}

function resetStream (request: IncomingMessage): void {
  const stream = (request as unknown as { stream?: { readonly closed: boolean, close: (code: number) => void } }).stream
  if (stream !== undefined && !stream.closed) stream.close(http2Constants.NGHTTP2_NO_ERROR)
}

/** RFC 9110 §9.3.7: `OPTIONS *` asks about the server itself; undici cannot send a `*` target, so srvgate answers. */
async function answerAsterisk (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (request.method !== 'OPTIONS') return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `${request.method} * is only meaningful for OPTIONS`))
  return await reply.code(200).header('allow', PROXIED_METHODS.join(', ')).header('content-length', '0').send()
}

function stripPrefix (frontend: FrontendConfig | undefined, dest: string): string {
  const prefix = frontend?.rewrite.stripPrefix
  if (prefix === undefined || !dest.startsWith(prefix)) return dest
  const rest = dest.slice(prefix.length)
  return rest.startsWith('/') ? rest : `/${rest}`
}

/** Bytes in and out since the previous request on this connection ended (requests on one connection are sequential). */
function socketBytes (raw: IncomingMessage): { bytesIn: number, bytesOut: number } {
  const socket = raw.socket as MarkedSocket | null
  // HTTP/2 multiplexes requests on one connection: no per-request connection counts (logged as 0).
  if (socket === null || raw.httpVersionMajor === 2) return { bytesIn: 0, bytesOut: 0 }
  const mark = socket[MARK] ?? { read: 0, written: 0 }
  const read = socket.bytesRead
  const written = socket.bytesWritten
  socket[MARK] = { read, written }
  return { bytesIn: read - mark.read, bytesOut: written - mark.written }
}
