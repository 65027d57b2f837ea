import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { GatewayMetrics } from '../admin/metrics.js'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import { accessRecordOf, type AccessLog } from '../proxy/access-log.js'
import { errorReply, writeRawReply, writeStreamReply } from '../proxy/error-reply.js'
import { requestIdOf } from '../proxy/headers.js'

/**
 * Requests answered before routing, outside fastify: what Node could not
 * parse, CONNECT, an HTTP/2 stream with an unknown method. Same JSON shape as
 * every other refusal, one access-log line and the edge metrics each.
 */
export class Refusals {
  readonly #metrics: GatewayMetrics
  readonly #accessLog: AccessLog

  constructor (metrics: GatewayMetrics, accessLog: AccessLog) {
    this.#metrics = metrics
    this.#accessLog = accessLog
  }

  /** An answer written on the raw socket (HTTP/1.1). */
  readonly raw = (socket: Duplex, request: IncomingMessage | undefined, error: GatewayError): void => {
    const requestId = requestIdOf(request?.headers['x-request-id'])
    const reply = errorReply(error)
    writeRawReply(socket, requestId, reply)
    this.#metrics.requestRefused({ frontend: undefined, backend: undefined, backendName: undefined, status: reply.status, durationSeconds: 0 })
    const peer = (socket as { remoteAddress?: string }).remoteAddress ?? ''
    this.#accessLog.record(accessRecordOf(request, { requestId, clientIp: peer, status: reply.status, durationMs: 0, error: error.code, errorDetail: error.message }))
  }

  /** The same for an HTTP/2 stream that never reaches fastify: an answer with its own :status on the stream. */
  readonly stream = (request: Http2ServerRequest, response: Http2ServerResponse, error: GatewayError): void => {
    const requestId = requestIdOf(request.headers['x-request-id'])
    const reply = errorReply(error)
    writeStreamReply(response, requestId, reply)
    this.#metrics.requestRefused({ frontend: undefined, backend: undefined, backendName: undefined, status: reply.status, durationSeconds: 0, protocol: 'HTTP/2' })
    this.#accessLog.record(accessRecordOf(request, { requestId, clientIp: request.socket?.remoteAddress ?? '', status: reply.status, durationMs: 0, error: error.code, errorDetail: error.message }))
  }
}

/** srvgate is not a forward proxy: CONNECT gets 405 in the documented shape (Node would drop the socket). */
export function connectRefusal (): ProxyError {
  return new ProxyError(ErrorCode.METHOD_NOT_ALLOWED, 'CONNECT: srvgate is not a forward proxy')
}
