import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Duplex } from 'node:stream'
import type { GatewayConfig } from '../config/types.js'
import { ErrorCode, ProxyError } from '../errors.js'
import { requestLogger, type Log } from '../log/process-log.js'
import { clientErrorOf, isHeadTimeout } from '../proxy/error-reply.js'
import { requestIdOf } from '../proxy/headers.js'
import { refuseRequestUnderWay, sendError } from '../proxy/plugin.js'
import { pathOf } from '../proxy/route-request.js'
import type { RequestEnd } from '../proxy/request-end.js'
import { schemaless } from '../util/fastify-schemaless.js'

/**
 * The fastify instance every public request goes through (plain HTTP listens
 * on it; the HTTPS listener routes into it): its options, what happens to a
 * request Node cannot parse, and the answers for what reaches fastify but no
 * proxy route.
 */
export function publicApp (config: GatewayConfig, log: Log | undefined, ends: RequestEnd): FastifyInstance {
  const app = Fastify({
    // fastify gets no logger of its own: with one it makes a pino child and two response
    // listeners for every request (~3 µs, docs/BENCHMARKS.md). request.log and reply.log,
    // where fastify reports what goes wrong with a request, come from RequestLogger instead.
    logger: false,
    ...(log === undefined ? {} : { childLoggerFactory: (_none, bindings) => requestLogger(log, bindings) }),
    // One access-log line per request comes from proxy/plugin.ts instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    // Bodies stream through; no limit applies to what fastify never buffers.
    bodyLimit: 1024 * 1024,
    // While draining, requests on open connections are still served (with Connection: close).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: config.client.keepAliveTimeoutMs,
    // Node checks headersTimeout on this period (30 s by default): a 10 s limit would be up to 40 s.
    // requireHostHeader off: a request without Host reaches routing and gets the documented 400 (Node's own has no JSON, no x-request-id).
    http: { maxHeaderSize: config.client.maxHeaderBytes, connectionsCheckingInterval: 1000, requireHostHeader: false },
    // Requests Node cannot parse still get a JSON answer with an x-request-id and an access-log line (spec §3).
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => { onClientError(error, socket, ends) },
    // A target fastify's router cannot decode (`/%zz`): refused before any hook, so answered here in the
    // documented shape, with a request id and an access line (fastify's own body would echo the path).
    frameworkErrors: (error, request, reply) => {
      const refusal = new ProxyError(ErrorCode.REQUEST_MALFORMED, `unparseable target (${error.code})`)
      if (request.raw.httpVersionMajor === 2) ends.refuseStream(request.raw as unknown as Http2ServerRequest, reply.raw as unknown as Http2ServerResponse, refusal)
      else ends.refuseRaw(request.raw.socket, request.raw, refusal)
    },
    ...schemaless
  })
  applyClientLimits(app, config)
  // What reaches fastify but no proxy route (a target fastify's router refuses) still gets the JSON shape.
  app.setNotFoundHandler(async (request, reply) => {
    reply.header('x-request-id', request.id)
    return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `no route for target ${pathOf(request.url)}`))
  })
  app.setErrorHandler(async (error, request, reply) => {
    reply.header('x-request-id', request.id)
    request.log.error({ err: error }, 'request failed unexpectedly')
    return await sendError(reply, new ProxyError(ErrorCode.UPSTREAM_ERROR, (error as Error).message, undefined, { cause: error }))
  })
  return app
}

/** A client error on a connection, plain or TLS (after its handshake): answered when there is someone to answer. */
export function onClientError (error: NodeJS.ErrnoException, socket: Duplex, ends: RequestEnd): void {
  // The client reset or ended its connection mid-request: nobody to answer (a request under way logs 499).
  if (error.code === 'ECONNRESET' || error.code === 'HPE_INVALID_EOF_STATE') {
    socket.destroy()
    return
  }
  // A connection that never sent a byte (a browser's preconnect, an L4 health check) is closed
  // without an answer or a log line, as HAProxy's `option http-ignore-probes` does.
  if (isHeadTimeout(error.code) && (socket as { bytesRead?: number }).bytesRead === 0) {
    socket.destroy()
    return
  }
  const refusal = clientErrorOf(error.code)
  if (refuseRequestUnderWay(socket, refusal)) return
  ends.refuseRaw(socket, undefined, refusal)
}

/** The limits a running listener can take on reload (maxHeaderBytes needs a restart). */
export function applyClientLimits (app: FastifyInstance, config: GatewayConfig): void {
  const server = app.server
  server.headersTimeout = config.client.headersTimeoutMs
  server.keepAliveTimeout = config.client.keepAliveTimeoutMs
  // One more than the limit: routing sees a request that went over it (Node would cut silently).
  server.maxHeadersCount = config.client.maxHeaderCount + 1
}
