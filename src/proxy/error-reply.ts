import { nodeHttp } from '../util/node-http.js'
import type { Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'

/** What the client gets; `retryAfterS` becomes a Retry-After header (RFC 9110 §10.2.3: delay-seconds). */
export type ErrorReply = { readonly status: number, readonly body: Readonly<Record<string, string>>, readonly retryAfterS?: number | undefined, readonly challenge?: string | undefined }

/**
 * The one map from an error code to what the client sees (spec §3). Bodies
 * carry no internal address, no stack, no message: those go to the logs.
 */
export function errorReply (error: GatewayError): ErrorReply {
  switch (error.code) {
    case ErrorCode.ROUTE_NOT_FOUND: return { status: 404, body: { error: 'no_route' } }
    case ErrorCode.REQUEST_MALFORMED: return { status: 400, body: { error: 'bad_request' } }
    case ErrorCode.REQUEST_HEADERS_TOO_LARGE: return { status: 431, body: { error: 'request_headers_too_large' } }
    case ErrorCode.METHOD_NOT_ALLOWED: return { status: 405, body: { error: 'method_not_allowed' } }
    case ErrorCode.MISDIRECTED_REQUEST: return { status: 421, body: { error: 'misdirected_request' } }
    case ErrorCode.CLIENT_TIMEOUT: return { status: 408, body: { error: 'request_timeout' } }
    // Never sent (nobody is left to read it): the status the access log and metrics record.
    case ErrorCode.CLIENT_GONE: return { status: 499, body: { error: 'client_closed_request' } }
    case ErrorCode.NO_HEALTHY_INSTANCE:
      return { status: 503, body: { error: 'no_healthy_upstream', backend: error instanceof ProxyError ? error.backend ?? '' : '' } }
    // Too many new environments at once: nothing is wrong with this one, ask again shortly.
    case ErrorCode.TEMPLATE_RATE_LIMITED:
      return { status: 503, body: { error: 'template_rate_limited' }, retryAfterS: error instanceof ProxyError ? error.retryAfterS ?? 1 : 1 }
    case ErrorCode.UPSTREAM_TIMEOUT: return { status: 504, body: { error: 'upstream_timeout' } }
    case ErrorCode.DEADLINE_EXCEEDED: return { status: 504, body: { error: 'deadline_exceeded' } }
    // A frontend's policies (policy/): refusals that never reach an instance.
    case ErrorCode.ACCESS_DENIED: return { status: 403, body: { error: 'forbidden' } }
    case ErrorCode.AUTH_REFUSED: return { status: 403, body: { error: 'forbidden' } }
    case ErrorCode.AUTH_REQUIRED: return { status: 401, body: { error: 'unauthorized' }, challenge: error instanceof ProxyError ? error.challenge : undefined }
    case ErrorCode.AUTH_UNAVAILABLE: return { status: 503, body: { error: 'auth_unavailable' }, retryAfterS: 1 }
    case ErrorCode.RATE_LIMITED: return { status: 429, body: { error: 'rate_limited' }, retryAfterS: error instanceof ProxyError ? error.retryAfterS ?? 1 : 1 }
    default: return { status: 502, body: { error: 'upstream_error' } }
  }
}

/** Find our error in a chain of causes (undici and Node wrap errors in others). */
export function findProxyError (error: unknown): ProxyError | undefined {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof ProxyError) return current
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** Where no fastify reply exists (a WebSocket handshake, a request Node could not parse): write the answer on the socket. */
/** Written on a raw socket; the body's bytes (0: the socket was gone). */
export function writeRawReply (socket: Duplex, requestId: string, reply: ErrorReply): number {
  if (!socket.writable) return 0
  const text = JSON.stringify(reply.body)
  const retryAfter = reply.retryAfterS === undefined ? '' : `retry-after: ${reply.retryAfterS}\r\n`
  const challenge = reply.challenge === undefined ? '' : `www-authenticate: ${reply.challenge}\r\n`
  socket.end(`HTTP/1.1 ${reply.status} ${nodeHttp.STATUS_CODES[reply.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${retryAfter}${challenge}x-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`)
  return Buffer.byteLength(text)
}

/** An HTTP/2 stream outside fastify (CONNECT): the answer as the stream's own :status and DATA; the body's bytes (0: not written). */
export function writeStreamReply (response: Http2ServerResponse, requestId: string, reply: ErrorReply): number {
  if (response.headersSent || response.destroyed) return 0
  const text = JSON.stringify(reply.body)
  const length = Buffer.byteLength(text)
  response.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': length, 'x-request-id': requestId, ...(reply.retryAfterS === undefined ? {} : { 'retry-after': String(reply.retryAfterS) }), ...(reply.challenge === undefined ? {} : { 'www-authenticate': reply.challenge }) })
  response.end(text)
  return length
}

/** Node's parser refused the request: 431 for oversized headers, 408 for a request too slow to arrive, else 400. */
export function clientErrorOf (code: string | undefined): ProxyError {
  if (code === 'HPE_HEADER_OVERFLOW') return new ProxyError(ErrorCode.REQUEST_HEADERS_TOO_LARGE, 'request head larger than client.maxHeaderBytes')
  if (isHeadTimeout(code)) return new ProxyError(ErrorCode.CLIENT_TIMEOUT, 'request head not received within client.headersTimeout')
  if (code === 'HPE_PAUSED_H2_UPGRADE') return new ProxyError(ErrorCode.REQUEST_MALFORMED, 'HTTP/2 with prior knowledge (h2c) on a listener that takes HTTP/1.x only (listen.h2c: false)')
  return new ProxyError(ErrorCode.REQUEST_MALFORMED, `unparseable request (${code ?? 'unknown'})`)
}

/** Node gave up waiting for a request head (client.headersTimeout). */
export function isHeadTimeout (code: string | undefined): boolean {
  return code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_REQUEST_HEADERS_TIMEOUT'
}
