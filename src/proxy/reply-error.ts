import type { IncomingMessage, ServerResponse } from 'node:http'
import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { responseOnSocket } from '../edge/node-http-internals.js'
import { ErrorCode, type GatewayError } from '../errors.js'
import { hasBody } from './body-buffer.js'
import { errorReply, type ErrorReply } from './error-reply.js'
import { grpcMessage, grpcStatusOf, isGrpc } from './grpc.js'
import type { ProxyRequest } from './proxy-request.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request object (proxy-request.ts), made in onRequest; null only before it. */
    srvgate: ProxyRequest | null
  }
}

/**
 * The fastify reply behind a raw response under way, so a body Node fails to
 * parse is answered by its own request. A symbol on the response, not a
 * WeakMap: one WeakMap entry per request was measured at ~35 µs a request in
 * garbage collection (ephemeron tables), a property costs nothing.
 */
const REPLY = Symbol('srvgate.reply')
type WithReply = ServerResponse & { [REPLY]?: FastifyReply }

/** The reply `refuseRequestUnderWay` finds for this response. */
export function markReply (reply: FastifyReply): void {
  (reply.raw as WithReply)[REPLY] = reply
}

/**
 * Node's parser failed on a connection (data-plane/public-app.ts's clientErrorHandler). When a
 * request is under way there (its body was malformed), that request answers
 * 400 itself, with its own id and its one access-log line, and true is
 * returned; otherwise the caller answers on the raw socket.
 */
export function refuseRequestUnderWay (socket: Duplex, error: GatewayError): boolean {
  const response: WithReply | undefined = responseOnSocket(socket)
  const reply = response?.[REPLY]
  if (reply === undefined) return false
  if (reply.sent || reply.raw.headersSent) socket.destroy()
  else void sendError(reply, error)
  return true
}

/** srvgate's own JSON answer for `error` (error-reply.ts), once: the request's first error is its cause. */
export async function sendError (reply: FastifyReply, error: GatewayError): Promise<FastifyReply> {
  const request = reply.request
  // The first error is the cause: a later one (the body's stream failing after a 400) is its consequence.
  // Undefined outside the proxy plugin's context (data-plane/public-app.ts's not-found and error handlers): its decorator is not there.
  const proxied: ProxyRequest | null | undefined = request.srvgate
  if (proxied !== null && proxied !== undefined) proxied.error ??= error
  // Not request.raw.destroyed: undici destroys the request body stream on failure while the client still waits.
  if (reply.sent || reply.raw.destroyed || request.raw.socket?.destroyed !== false) return reply
  // Nobody is left to read an answer.
  if (error.code === ErrorCode.CLIENT_GONE) return reply
  const { status, body, retryAfterS, challenge } = errorReply(error)
  // A gRPC call gets a status it can read (Envoy answers its own replies so too): 200, the status in trailers.
  if (request.raw.httpVersionMajor === 2 && isGrpc(request.headers['content-type'])) return await sendGrpcStatus(reply, status, body)
  // A request refused mid-body leaves unread bytes on the connection: close it.
  const leavesBodyUnread = error.code === ErrorCode.CLIENT_TIMEOUT || (hasBody(request.raw) && !request.raw.complete)
  const isHttp2 = request.raw.httpVersionMajor === 2
  // HTTP/2 has no Connection field (Node refuses to send one): the stream is reset instead, below.
  if (leavesBodyUnread && !isHttp2) reply.header('connection', 'close')
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS))
  if (challenge !== undefined) reply.header('www-authenticate', challenge)
  const sent = await reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body))
  // The answer is out; RST_STREAM NO_ERROR tells the client to stop sending (RFC 9113 §8.1). Without
  // it Node keeps the stream open while the client's side is, the request never finishes and its
  // connection stays busy for as long as the client likes.
  if (leavesBodyUnread && isHttp2) resetStream(request.raw)
  return sent
}

/**
 * srvgate's own answer to a gRPC call: `application/grpc`, no message, and
 * grpc-status with grpc-message in trailers (a HEADERS frame that ends the
 * stream; Node's compatibility layer cannot end a stream with its headers).
 * The HTTP status becomes gRPC's (proxy/grpc.ts); the access line keeps the
 * error code.
 */
async function sendGrpcStatus (reply: FastifyReply, httpStatus: number, body: ErrorReply['body']): Promise<FastifyReply> {
  // What the JSON answer says, no more (never an instance's address).
  const said = Object.entries(body).filter(([, value]) => value !== '').map(([name, value]) => `${name}=${value}`).join(' ')
  reply.raw.addTrailers({ 'grpc-status': String(grpcStatusOf(httpStatus)), 'grpc-message': grpcMessage(`srvgate: ${said}`) })
  return await reply.code(200).header('content-type', 'application/grpc').send()
}

/** An HTTP/2 request (Node's compatibility layer) carries its stream. */
function resetStream (request: IncomingMessage & { readonly stream?: ServerHttp2Stream }): void {
  const stream = request.stream
  if (stream !== undefined && !stream.closed) stream.close(http2Constants.NGHTTP2_NO_ERROR)
}
