import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import type { ServerHttp2Stream } from 'node:http2'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Clock } from '../util/clock.js'
import { TlsListener } from '../tls/listener.js'
import { wasCutForSendTimeout } from '../edge/h2-sessions.js'
import { BodyBudget, bufferableLength, hasBody, receiveBody } from './body-buffer.js'
import { ClientGone } from './client-gone.js'
import { clientIpOf, forwardRequestHeaders } from './headers.js'
import { applyRequestRules } from './header-rules.js'
import { PolicyAnswer } from '../policy/policy-answer.js'
import { applyAdmission, type FrontendGate } from './frontend-gate.js'
import { PROXIED_METHODS, answerAsterisk, redirectToHttps } from './own-answers.js'
import type { AcmeAnswers } from '../tls/acme-answers.js'
import { deadlineOf } from './grpc.js'
import { ProxyRequest } from './proxy-request.js'
import { markReply, sendError } from './reply-error.js'
import type { RequestEnd } from './request-end.js'
import { ResponseWriter, type WriterDeps } from './response-writer.js'
import { hostHeaderOf, requestKeyOf, routeRequest, upstreamPath, type RequestLine, type RouteResult, type RoutingState } from './route-request.js'
import type { UpstreamPools } from './upstream-pools.js'
import type { Tracing } from '../tracing/tracing.js'
import { normalizeTarget } from '../routing/target.js'

export type ProxyPluginOptions = {
  /** Read once per request, at its start: a reload never changes a request midway. */
  readonly state: () => RoutingState
  readonly pools: UpstreamPools
  /** Where each request ends: its metrics and its access record (request-end.ts). */
  readonly ends: RequestEnd
  readonly clock: Clock
  /** While draining, responses carry `Connection: close` so clients move to another replica. */
  readonly isDraining?: () => boolean
  /** The process's budget for bodies received whole (client.bufferTotalBytes). */
  readonly bodies: BodyBudget
  /** Plain-HTTP keep-alive connections between requests (edge/idle-connections.ts): told when each request starts and ends. */
  readonly idle?: { readonly busy: (socket: Socket) => void, readonly idle: (socket: Socket) => void }
  /** tls.acme's http-01 tokens under way: answered on the plain listener, before any redirect or route. */
  readonly acme?: AcmeAnswers
  /** Spans per request and attempt (tracing on); undefined: nothing is done per request for them. */
  readonly tracing?: Tracing | undefined
  /** Frontends' access and rate-limit policies. */
  readonly gate?: FrontendGate | undefined
}

/** Where a CA fetches an http-01 token (RFC 8555 §8.3). */
const ACME_HTTP_PATH = '/.well-known/acme-challenge/'

const NOT_DRAINING = (): boolean => false

/**
 * Why an answer was not written: an HTTP/2 stream the TLS listener reset for
 * client.sendTimeout (its timer can fire before the ResponseWriter's, which
 * says the same) is a CLIENT_TIMEOUT; anything else is a client that left.
 */
function unansweredError (reply: FastifyReply): ProxyError {
  const stream = (reply.raw as { stream?: ServerHttp2Stream }).stream
  if (wasCutForSendTimeout(stream)) return new ProxyError(ErrorCode.CLIENT_TIMEOUT, 'the client read none of the answer for client.sendTimeout')
  return new ProxyError(ErrorCode.CLIENT_GONE, 'the client closed its connection before the answer')
}

/**
 * The data plane's HTTP edge: a ProxyRequest per request, routed in
 * onRequest (404 / 503 answered here, never forwarded), then one route for
 * every method and path that sends it through the UpstreamPools and writes
 * the answer straight to the client (response-writer.ts). A request whose
 * client leaves is abandoned wherever it is, and its access-log line says 499.
 */
export async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions): Promise<void> {
  const { pools, ends, bodies, clock } = options
  const writerDeps: WriterDeps = { clock, isDraining: options.isDraining ?? NOT_DRAINING }
  // No body parsing: fastify would buffer text/plain (and hit bodyLimit) and drop GET bodies.
  app.removeAllContentTypeParsers()
  for (const method of PROXIED_METHODS) app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
  app.decorateRequest('srvgate', null)

  /** The one end of a request that reached the plugin, answered or abandoned. */
  const end = (request: FastifyRequest, reply: FastifyReply, isAnswered: boolean): void => {
    const proxied = request.srvgate
    if (proxied === null || proxied.isEnded) return
    proxied.isEnded = true
    if (proxied.bufferedBytes > 0) bodies.release(proxied.bufferedBytes)
    if (!isAnswered && proxied.error === undefined) proxied.error = unansweredError(reply)
    ends.ended(request.raw, proxied, isAnswered || cutByInstance(reply, proxied) ? reply.statusCode : 499)
  }

  // A callback hook, not an async one: a request routed at once costs no promise.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    const state = options.state()
    const raw = request.raw
    const socket: Socket | null = raw.socket
    const peerIp = socket?.remoteAddress ?? ''
    const isTrusted = (address: string): boolean => state.config.trustedProxies.matches(address)
    const isHttp2 = raw.httpVersionMajor === 2
    // Over HTTP/2 `socket` is Node's proxy, reading through to the TLS socket (or, for h2c on listen.http, the plain one).
    const isSecure = (socket as { encrypted?: boolean } | null)?.encrypted === true
    const proxied = new ProxyRequest(request.method, clock.now())
    proxied.requestId = request.id
    proxied.state = state
    proxied.clientIp = clientIpOf(peerIp, request.headers['x-forwarded-for'], isTrusted)
    proxied.isPeerTrusted = isTrusted(peerIp)
    if (options.tracing !== undefined) proxied.trace = options.tracing.startRequest(request.headers, request.method, proxied.isPeerTrusted, proxied.startedMs ?? clock.now())
    proxied.isSecure = isSecure
    proxied.protocol = isHttp2 ? 'HTTP/2' : raw.httpVersionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1'
    // A gRPC call's deadline bounds every attempt (gRPC runs over HTTP/2 only).
    if (isHttp2) proxied.deadlineAtMs = deadlineOf(request.headers['grpc-timeout'], proxied.startedMs ?? clock.now())
    proxied.isInFlight = true
    request.srvgate = proxied
    markReply(reply)
    ends.started()
    // An HTTP/1.x connection of listen.http: its keep-alive idle time is bounded by IdleConnections (h2c's by its session's timer).
    const isPlain = !isSecure && !isHttp2 && socket !== null
    if (isPlain) options.idle?.busy(socket)
    // 'close' comes once the answer is written, or earlier when the client leaves:
    // then the request is abandoned in every layer it reached.
    const clientGone = new ClientGone()
    proxied.clientGone = clientGone
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
      if (!isAnswered) {
        // Worded before the layers let go (the first error wins): a reset for client.sendTimeout is not a client that left.
        proxied.error ??= unansweredError(reply)
        clientGone.fire()
      }
      end(request, reply, isAnswered)
      if (isPlain) options.idle?.idle(socket)
    })
    const tls = state.config.tls
    if (isSecure && tls?.hsts !== undefined) reply.header('strict-transport-security', tls.hsts)
    // A reply sent from the hook ends the chain: done() is not called after it.
    // A token of ours: the CA's validation (a token srvgate does not hold goes on to the routes, as any path).
    if (!isSecure && options.acme !== undefined && raw.url?.startsWith(ACME_HTTP_PATH) === true) {
      const token = raw.url.slice(ACME_HTTP_PATH.length)
      const keyAuthorization = options.acme.keyAuthorization(token)
      if (keyAuthorization !== undefined) {
        void reply.code(200).header('content-type', 'application/octet-stream').send(keyAuthorization)
        return
      }
      // Shared storage: another replica's token, found through the control plane, or 404 (the path is srvgate's).
      if (options.acme.canLookup) {
        void options.acme.findKeyAuthorization(token).then(async (found) => {
          if (found !== undefined) await reply.code(200).header('content-type', 'application/octet-stream').send(found)
          else await sendError(reply, new ProxyError(ErrorCode.ROUTE_NOT_FOUND, 'no ACME challenge under way for this token'))
        })
        return
      }
    }
    if (!isSecure && tls?.redirectHttp === true && state.config.listen.https !== undefined) {
      void redirectToHttps(request, reply, state.config.listen.https.port)
      return
    }
    if (request.raw.url === '*') {
      void answerAsterisk(request, reply)
      return
    }
    // One form of the target for routing, policies, the instance and the log (routing/target.ts).
    const target = normalizeTarget(raw.url ?? '/')
    if (target instanceof ProxyError) {
      void sendError(reply, target)
      return
    }
    if (target !== raw.url) raw.url = target
    const proceed = (routed: RouteResult): void => {
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
      if (routed instanceof PolicyAnswer) {
        // An answer fastify refuses (a bug of ours: forward-auth.ts relays 3xx–5xx only) must not take the process down.
        sendPolicyAnswer(reply, routed).catch(() => { reply.raw.destroy() })
        return
      }
      if (routed.admission !== undefined) applyAdmission(request.headers, routed.admission)
      const limits = state.config.client
      const start = (body: Readable | Buffer | undefined): void => {
        const { backend, path } = routed
        proxied.routeTo(backend, {
          hashKey: backend.options.hashOn === undefined ? undefined : requestKeyOf(backend.options.hashOn, request.headers, path, proxied.clientIp),
          split: routed.split,
          splitKey: routed.splitKey,
          body,
          bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs,
          minBodyRate: limits.minBodyRate
        })
        done()
      }
      if (!hasBody(raw)) {
        start(undefined)
        return
      }
      // A body that fits is received whole before an instance connection is taken (nginx's
      // proxy_request_buffering): a slow upload then holds memory the budget bounds, not a connection.
      const length = bufferableLength(request.headers, limits.bufferBodyBytes)
      if (length === undefined || !bodies.reserve(length, limits.bufferTotalBytes)) {
        start(raw)
        return
      }
      proxied.bufferedBytes = length
      void receiveBody(raw, length, { idleTimeoutMs: limits.bodyIdleTimeoutMs, clock, clientGone }).then((received) => {
        if (!(received instanceof ProxyError)) start(received)
        else if (received.code !== ErrorCode.CLIENT_GONE) void sendError(reply, received)
        else {
          proxied.error = received
          reply.hijack()
          done()
        }
      })
    }
    const routed = routeRequest(state, raw as RequestLine, {
      clientGone,
      clientIp: proxied.clientIp,
      certificateNames: isSecure ? TlsListener.servedTo(socket)?.names : undefined,
      listener: proxied,
      gate: options.gate,
      isSecure
    })
    if (routed instanceof Promise) routed.then(proceed, done)
    else proceed(routed)
  })

  app.addHook('onSend', async (request, reply, payload) => {
    if (options.isDraining?.() === true && request.raw.httpVersionMajor !== 2) reply.header('connection', 'close')
    // srvgate's own answers (errors, OPTIONS *, the https redirect): their body's bytes, for the access log.
    const proxied = request.srvgate
    if (proxied !== null && request.method !== 'HEAD') proxied.bytesOut += bodyLength(payload)
    return payload
  })

  /** The route behind every method and path: the request goes to the backend, the answer straight to the client. */
  const forward = (request: FastifyRequest, reply: FastifyReply): void => {
    const proxied = request.srvgate
    // Answered in onRequest (a refusal, OPTIONS *), or the client left: nothing to send.
    if (proxied === null || !proxied.isRouted || reply.sent) return
    const forwarded = forwardRequestHeaders(request.headers, request.headers, {
      peerIp: request.raw.socket?.remoteAddress ?? '',
      isPeerTrusted: proxied.isPeerTrusted,
      clientIp: proxied.clientIp,
      host: hostHeaderOf(request.headers) ?? '',
      proto: proxied.isSecure ? 'https' : 'http',
      requestId: request.id
    })
    // The frontend's header rules, after srvgate's own (they cannot touch those).
    const rules = proxied.decision?.frontend.headers?.request
    const headers = rules === undefined ? forwarded : applyRequestRules(forwarded, rules, proxied.decision?.env)
    // The origin is the instance's, set per attempt; the body comes from the route.
    pools.forward(proxied, { origin: '', method: request.method, path: upstreamPath(request.url, proxied.decision?.frontend), headers, body: null }, new ResponseWriter(reply, proxied, writerDeps))
  }
  app.route({ method: [...PROXIED_METHODS], url: '/', handler: forward })
  app.route({ method: [...PROXIED_METHODS], url: '/*', handler: forward })
}

/** A policy's own answer (a redirect, an auth service's refusal); its reason, if any, is the request's error for the log. */
async function sendPolicyAnswer (reply: FastifyReply, answer: PolicyAnswer): Promise<void> {
  const proxied = reply.request.srvgate
  if (proxied !== null && answer.error !== undefined) proxied.error ??= answer.error
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of answer.headers) {
    const earlier = headers[name]
    headers[name] = earlier === undefined ? value : [earlier, value].flat()
  }
  await reply.code(answer.status).headers(headers).send(answer.body)
}

/**
 * An answer whose status went out and whose body the instance broke off
 * (reset, timeout mid-body): logged with the status the client got and the
 * instance's error, as nginx and HAProxy log it, not as a client that left (499).
 */
function cutByInstance (reply: FastifyReply, proxied: ProxyRequest): boolean {
  return reply.raw.headersSent && proxied.error !== undefined && proxied.error.code.startsWith('SG_ERR_UPSTREAM_')
}

/** Bytes of a payload fastify sends as it is (strings and buffers: srvgate's own answers are JSON text). */
function bodyLength (payload: unknown): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : Buffer.isBuffer(payload) ? payload.length : 0
}

// What the data plane (data-plane/) calls besides the plugin: the methods srvgate forwards, and the answers to what Node's parser refused.
export { isProxiedMethod } from './own-answers.js'
export { refuseRequestUnderWay, sendError } from './reply-error.js'
export { RequestEnd } from './request-end.js'
