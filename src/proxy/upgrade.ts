import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { nodeHttp } from '../util/node-http.js'
import type { EventEmitter } from 'node:events'
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import type { UpstreamPools } from './upstream-pools.js'
import { ProxyRequest } from './proxy-request.js'
import { applyRequestRules } from './header-rules.js'
import { PolicyAnswer } from '../policy/policy-answer.js'
import { applyAdmission, type FrontendGate } from './frontend-gate.js'
import type { Tracing } from '../tracing/tracing.js'
import { ClientGone } from './client-gone.js'
import { errorReply, writeRawReply } from './error-reply.js'
import { DROPPED_RESPONSE, clientIpOf, forwardRequestHeaders, requestIdOf } from './headers.js'
import type { RequestEnd } from './request-end.js'
import { routeRequest, type RequestLine, type RoutingState } from './route-request.js'
import { TlsListener } from '../tls/listener.js'
import { normalizeTarget } from '../routing/target.js'

export type UpgradeDeps = {
  readonly state: () => RoutingState
  readonly pools: UpstreamPools
  readonly log: FastifyBaseLogger
  /** Where each handshake ends: its metrics and its access record (request-end.ts). */
  readonly ends: RequestEnd
  /** A handshake is traced as any request (tracing on). */
  readonly tracing?: Tracing | undefined
  /** Frontends' access and rate-limit policies: a handshake passes them as any request. */
  readonly gate?: FrontendGate | undefined
}

/**
 * WebSocket upgrades are tunnelled, not terminated: the handshake goes to an
 * instance through the same failover dispatcher as any request, and the
 * client gets 101 only once an instance has answered 101 (@fastify/http-proxy
 * answers 101 first and then finds the instance dead; see
 * it forwards only cookies and the handshake headers, and on a dead instance
 * sends 101 then a close naming the internal address). Every handshake header is forwarded. An instance
 * that refuses the upgrade has its answer relayed as it is.
 *
 * Other Upgrade tokens (h2c) are ignored (RFC 9110 §7.8) and the request is
 * served as a plain one, when it has no body. `server`: the plain HTTP
 * server or the HTTPS listener's (both emit 'upgrade' for HTTP/1.1).
 */
export function handleUpgrades (server: EventEmitter, deps: UpgradeDeps): void {
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    if (String(request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      serveAsPlainRequest(server, request, socket, head)
      return
    }
    if (request.method !== 'GET') {
      // RFC 6455 §4.1: the opening handshake is a GET. Never rewritten into one.
      deps.ends.refuseRaw(socket, request, new ProxyError(ErrorCode.REQUEST_MALFORMED, `a WebSocket handshake must be GET, not ${request.method ?? ''}`), 'websocket')
      return
    }
    tunnel(request, socket, head, deps).catch((error: unknown) => {
      deps.log.error({ err: error }, 'websocket tunnel failed unexpectedly')
      socket.destroy()
    })
  })
}

/**
 * A body of at least one byte is announced (chunked, or a Content-Length above
 * 0). Not body-buffer.ts's hasBody (any Content-Length but "0"): what this
 * refuses is a body an Upgrade would leave unread on the connection.
 */
function announcesBodyBytes (headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0
}

function serveAsPlainRequest (server: EventEmitter, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (announcesBodyBytes(request.headers)) {
    writeError(socket, requestIdOf(request.headers['x-request-id']), new ProxyError(ErrorCode.REQUEST_MALFORMED, 'a body with an Upgrade srvgate does not tunnel'))
    return
  }
  // Node hands every upgrade a net.Socket (a TLSSocket on the HTTPS listener); its types say Duplex.
  if (!(socket instanceof Socket)) {
    socket.destroy()
    return
  }
  if (head.length > 0) socket.unshift(head)
  const response = new nodeHttp.ServerResponse(request)
  response.shouldKeepAlive = false
  response.assignSocket(socket)
  response.on('finish', () => { socket.end() })
  server.emit('request', request, response)
}

async function tunnel (request: IncomingMessage, socket: Duplex, head: Buffer, deps: UpgradeDeps): Promise<void> {
  const { ends } = deps
  const state = deps.state()
  const proxied = new ProxyRequest('GET', ends.clock.now())
  const requestId = requestIdOf(request.headers['x-request-id'])
  proxied.requestId = requestId
  proxied.state = state
  proxied.upgrade = 'websocket'
  const clientGone = new ClientGone()
  proxied.clientGone = clientGone
  socket.once('close', () => { clientGone.fire() })
  const peerIp = request.socket.remoteAddress ?? ''
  const isTrusted = (address: string): boolean => state.config.trustedProxies.matches(address)
  proxied.clientIp = clientIpOf(peerIp, request.headers['x-forwarded-for'], isTrusted)
  proxied.isPeerTrusted = isTrusted(peerIp)
  if (deps.tracing !== undefined) proxied.trace = deps.tracing.startRequest(request.headers, 'GET', proxied.isPeerTrusted, proxied.startedMs ?? ends.clock.now())
  // Upgrades come over HTTP/1.1 on either listener; a TLS socket is the HTTPS one.
  proxied.isSecure = (request.socket as { encrypted?: boolean }).encrypted === true
  const target = normalizeTarget(request.url ?? '/')
  if (target instanceof ProxyError) {
    proxied.error = target
    proxied.bytesOut = writeError(socket, requestId, target)
    ends.ended(request, proxied, errorReply(target).status)
    return
  }
  request.url = target
  const routed = await routeRequest(state, request as RequestLine, { clientGone, clientIp: proxied.clientIp, certificateNames: TlsListener.servedTo(request.socket)?.names, listener: proxied, gate: deps.gate, isSecure: proxied.isSecure })
  if (routed instanceof ProxyError) {
    proxied.error = routed
    if (routed.code === ErrorCode.CLIENT_GONE) ends.ended(request, proxied, 499)
    else {
      proxied.bytesOut = writeError(socket, requestId, routed)
      ends.ended(request, proxied, errorReply(routed).status)
    }
    return
  }
  if (routed instanceof PolicyAnswer) {
    // A redirect, or an auth service's refusal: the handshake is answered, and the connection ends (nothing to tunnel).
    if (routed.error !== undefined) proxied.error = routed.error
    const body = routed.body ?? Buffer.alloc(0)
    const lines = routed.headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')
    if (socket.writable) socket.end(Buffer.concat([Buffer.from(`${statusLine(routed.status, '')}${lines}x-request-id: ${requestId}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]))
    proxied.bytesOut = body.length
    ends.ended(request, proxied, routed.status)
    return
  }
  if (routed.admission !== undefined) applyAdmission(request.headers, routed.admission)
  proxied.protocol = 'HTTP/1.1'
  proxied.routeTo(routed.backend, { split: routed.split, splitKey: routed.splitKey })
  const forwarded = forwardRequestHeaders({ ...request.headers }, request.headers, {
    peerIp,
    isPeerTrusted: proxied.isPeerTrusted,
    clientIp: proxied.clientIp,
    host: request.headers.host ?? '',
    proto: proxied.isSecure ? 'https' : 'http',
    requestId
  })
  const rules = proxied.decision?.frontend.headers?.request
  const headers = rules === undefined ? forwarded : applyRequestRules(forwarded, rules, proxied.decision?.env)
  // The origin is the instance's, set per attempt by the ProxyRequest.
  const options: Dispatcher.DispatchOptions = { origin: '', path: request.url ?? '/', method: 'GET', headers, upgrade: 'websocket', body: null }
  deps.pools.forward(proxied, options, new HandshakeRelay(proxied, socket, head, request, ends))
}

/** The downstream of a handshake's ProxyRequest: the instance's 101 (then the tunnel), or its refusal, or srvgate's error, on the client's socket. */
class HandshakeRelay implements Dispatcher.DispatchHandler {
  #isRelaying = false

  constructor (readonly request: ProxyRequest, readonly socket: Duplex, readonly head: Buffer, readonly incoming: IncomingMessage, readonly ends: RequestEnd) {}

  onConnect (): void {}

  onHeaders (statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    // The instance declined the upgrade: relay its answer and close.
    if (statusCode < 200) return true
    this.#isRelaying = true
    this.socket.write(statusLine(statusCode, statusText) + headerLines(rawHeaders, this.request.requestId) + 'connection: close\r\n\r\n')
    this.ends.ended(this.incoming, this.request, statusCode)
    return true
  }

  onData (chunk: Buffer): boolean {
    this.socket.write(chunk)
    return true
  }

  onComplete (): void { this.socket.end() }

  onUpgrade (statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    const socket = this.socket
    socket.write(statusLine(statusCode, 'Switching Protocols') + headerLines(rawHeaders, this.request.requestId) + 'connection: Upgrade\r\nupgrade: websocket\r\n\r\n')
    if (this.head.length > 0) upstream.write(this.head)
    upstream.on('error', () => { socket.destroy() })
    socket.on('error', () => { upstream.destroy() })
    upstream.on('close', () => { socket.destroy() })
    socket.on('close', () => { upstream.destroy() })
    upstream.pipe(socket)
    socket.pipe(upstream)
    this.ends.ended(this.incoming, this.request, 101)
  }

  onError (error: Error): void {
    const request = this.request
    if (this.#isRelaying) {
      this.socket.destroy()
      return
    }
    if (request.clientGone?.isGone === true) {
      request.error ??= new ProxyError(ErrorCode.CLIENT_GONE, 'the client left during the handshake')
      this.ends.ended(this.incoming, request, 499)
      return
    }
    const proxyError = error instanceof ProxyError ? error : new ProxyError(ErrorCode.UPSTREAM_ERROR, error.message, request.backend?.name, { cause: error })
    request.error ??= proxyError
    request.bytesOut = writeError(this.socket, request.requestId, proxyError)
    this.ends.ended(this.incoming, request, errorReply(proxyError).status)
  }
}

function statusLine (status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text === '' ? nodeHttp.STATUS_CODES[status] ?? '' : text}\r\n`
}

/** The instance's response headers minus hop-by-hop ones, plus our request id. */
function headerLines (rawHeaders: ReadonlyArray<Buffer | string> | null, requestId: string): string {
  if (rawHeaders === null) return `x-request-id: ${requestId}\r\n`
  let lines = ''
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = String(rawHeaders[index])
    if (DROPPED_RESPONSE.has(name.toLowerCase())) continue
    lines += `${name}: ${String(rawHeaders[index + 1])}\r\n`
  }
  return `${lines}x-request-id: ${requestId}\r\n`
}

/** The error's JSON answer on the socket; its body's bytes. */
function writeError (socket: Duplex, requestId: string, error: GatewayError): number {
  return writeRawReply(socket, requestId, errorReply(error))
}
