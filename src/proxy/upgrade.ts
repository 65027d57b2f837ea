import { ServerResponse, STATUS_CODES, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import type { UpstreamPools } from './upstream-pools.js'
import { failoverOf, newProxyContext } from './failover-request.js'
import { accessRecordOf } from './access-log.js'
import { ClientGone } from './client-gone.js'
import type { Clock } from '../util/clock.js'
import { errorReply, writeRawReply } from './error-reply.js'
import { DROPPED_RESPONSE, clientIpOf, forwardRequestHeaders, requestIdOf } from './headers.js'
import { routeRequest, type RequestLine, type RoutingState } from './route-request.js'
import type { AccessLog } from './access-log.js'
import type { FinishedRequest } from './plugin.js'
import { TlsListener } from '../tls/listener.js'

export type UpgradeDeps = {
  readonly state: () => RoutingState
  readonly dispatcher: UpstreamPools
  readonly log: FastifyBaseLogger
  readonly accessLog: AccessLog
  readonly clock: Clock
  readonly onFinished?: (request: FinishedRequest) => void
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
 * served as a plain one, when it has no body.
 */
export function handleUpgrades (server: Server, deps: UpgradeDeps): void {
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    if (String(request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      serveAsPlainRequest(server, request, socket, head)
      return
    }
    if (request.method !== 'GET') {
      // RFC 6455 §4.1: the opening handshake is a GET. Never rewritten into one.
      refuse(request, socket, deps, new ProxyError(ErrorCode.REQUEST_MALFORMED, `a WebSocket handshake must be GET, not ${request.method ?? ''}`))
      return
    }
    tunnel(request, socket, head, deps).catch((error: unknown) => {
      deps.log.error({ err: error }, 'websocket tunnel failed unexpectedly')
      socket.destroy()
    })
  })
}

function serveAsPlainRequest (server: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0
  if (hasBody) {
    writeError(socket, requestIdOf(request.headers['x-request-id']), new ProxyError(ErrorCode.REQUEST_MALFORMED, 'a body with an Upgrade srvgate does not tunnel'))
    return
  }
  if (head.length > 0) socket.unshift(head)
  const response = new ServerResponse(request)
  response.shouldKeepAlive = false
  response.assignSocket(socket as never)
  response.on('finish', () => { socket.end() })
  server.emit('request', request, response)
}

/** A handshake answered by srvgate itself: the documented JSON shape and one access-log line. */
function refuse (request: IncomingMessage, socket: Duplex, deps: UpgradeDeps, error: GatewayError): void {
  const requestId = requestIdOf(request.headers['x-request-id'])
  writeError(socket, requestId, error)
  const status = errorReply(error).status
  deps.onFinished?.({ frontend: undefined, backend: undefined, backendName: undefined, status, durationSeconds: 0 })
  deps.accessLog.record(accessRecordOf(request, { requestId, clientIp: request.socket.remoteAddress ?? '', status, durationMs: 0, error: error.code, errorDetail: error.message, upgrade: 'websocket' }))
}

async function tunnel (request: IncomingMessage, socket: Duplex, head: Buffer, deps: UpgradeDeps): Promise<void> {
  const requestId = requestIdOf(request.headers['x-request-id'])
  const started = deps.clock.now()
  const state = deps.state()
  const clientGone = new ClientGone()
  socket.once('close', () => { clientGone.fire() })
  const peerIp = request.socket.remoteAddress ?? ''
  const isTrusted = (address: string): boolean => state.config.trustedProxies.matches(address)
  const clientIp = clientIpOf(peerIp, request.headers['x-forwarded-for'], isTrusted)
  const routed = await routeRequest(state, request as RequestLine, { clientGone, clientIp, certificateNames: TlsListener.servedTo(request.socket)?.names })
  if (routed instanceof ProxyError) {
    if (routed.code === ErrorCode.CLIENT_GONE) {
      deps.accessLog.record(accessRecordOf(request, { requestId, clientIp: request.socket.remoteAddress ?? '', status: 499, durationMs: Math.round(deps.clock.now() - started), error: routed.code, upgrade: 'websocket' }))
      return
    }
    refuse(request, socket, deps, routed)
    return
  }
  const { backend, decision, split } = routed
  const context = newProxyContext(backend, 'GET', { clientGone, split, splitKey: routed.splitKey })
  const headers = forwardRequestHeaders({ ...request.headers }, request.headers, {
    peerIp,
    isPeerTrusted: isTrusted(peerIp),
    clientIp,
    host: request.headers.host ?? '',
    // Upgrades come over HTTP/1.1 on either listener; a TLS socket is the HTTPS one.
    proto: (request.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
    requestId
  })
  const finish = (status: number, error?: GatewayError): void => {
    const durationMs = Math.round((deps.clock.now() - started) * 100) / 100
    const failover = failoverOf(context)
    deps.onFinished?.({ frontend: decision.frontend.name, backend: backend.metricLabel, backendName: backend.name, status, durationSeconds: durationMs / 1000, protocol: 'HTTP/1.1', split: split?.metricLabel, failoverTarget: failover?.lookup.name })
    deps.accessLog.record(accessRecordOf(request, {
      requestId,
      status,
      durationMs,
      upgrade: 'websocket',
      clientIp,
      frontend: decision.frontend.name, backend: backend.name, split: split?.name, failover: failover?.name, instance: context.instance?.key,
      upstreamStatus: context.upstreamStatus, retries: context.retries, retryReasons: context.retryReasons.length === 0 ? undefined : context.retryReasons, error: error?.code, errorDetail: error?.message
    }))
  }
  let isRelaying = false
  const handler: Dispatcher.DispatchHandler = {
    onConnect: () => {},
    onHeaders: (statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean => {
      // The instance declined the upgrade: relay its answer and close.
      if (statusCode < 200) return true
      isRelaying = true
      socket.write(statusLine(statusCode, statusText) + headerLines(rawHeaders, requestId) + 'connection: close\r\n\r\n')
      finish(statusCode)
      return true
    },
    onData: (chunk: Buffer): boolean => { socket.write(chunk); return true },
    onComplete: () => { socket.end() },
    onUpgrade: (statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex) => {
      socket.write(statusLine(statusCode, 'Switching Protocols') + headerLines(rawHeaders, requestId) + 'connection: Upgrade\r\nupgrade: websocket\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.on('error', () => { socket.destroy() })
      socket.on('error', () => { upstream.destroy() })
      upstream.on('close', () => { socket.destroy() })
      socket.on('close', () => { upstream.destroy() })
      upstream.pipe(socket)
      socket.pipe(upstream)
      finish(101)
    },
    onError: (error: Error) => {
      if (isRelaying) { socket.destroy(); return }
      if (clientGone.isGone) { finish(499, new ProxyError(ErrorCode.CLIENT_GONE, 'the client left during the handshake')); return }
      const proxyError = error instanceof ProxyError ? error : new ProxyError(ErrorCode.UPSTREAM_ERROR, error.message, backend.name, { cause: error })
      writeError(socket, requestId, proxyError)
      finish(errorReply(proxyError).status, proxyError)
    }
  }
  // The origin is the instance's, set per attempt by the FailoverRequest.
  const options: Dispatcher.DispatchOptions = { origin: '', path: request.url ?? '/', method: 'GET', headers: headers as Record<string, string>, upgrade: 'websocket', body: null }
  deps.dispatcher.forward(context, options, handler)
}

function statusLine (status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text === '' ? STATUS_CODES[status] ?? '' : text}\r\n`
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

function writeError (socket: Duplex, requestId: string, error: GatewayError): void {
  writeRawReply(socket, requestId, errorReply(error))
}
