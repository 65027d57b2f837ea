import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { Instance } from '../discovery/instance-set.js'
import type { GatewayError } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import type { Split } from '../upstream/split.js'
import type { Clock } from '../util/clock.js'
import { accessRecordOf, type AccessLog, type RequestHead } from './access-log.js'
import { errorReply, writeRawReply, writeStreamReply } from './error-reply.js'
import { requestIdOf } from './headers.js'
import { hostHeaderOf, pathOf } from './route-request.js'
import type { RequestTrace } from '../tracing/request-trace.js'

export type Protocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2'

/** One answered request, for the metrics. */
export type FinishedRequest = {
  readonly frontend: string | undefined
  readonly backend: string | undefined
  /** The backend's own name (per environment for templated backends). */
  readonly backendName: string | undefined
  readonly status: number
  readonly durationSeconds: number
  /** HTTP/1.1 or HTTP/2, for requests that got as far as a request line. */
  readonly protocol?: Protocol | undefined
  /** The split that chose the backend, if any (its metric label: the template for a templated split). */
  readonly split?: string | undefined
  /** A failover target served the request instead of the backend's own discovery: its name (`api~failover-1`)… */
  readonly failoverTarget?: string | undefined
  /** …and the DNS name it discovers instances by (`_api._prod.service.dc2.consul`). */
  readonly failoverDiscovery?: string | undefined
}

/** The metrics' side of a request's end (admin/metrics.ts). */
export type RequestMetrics = {
  /** A request entered the proxy route (the in-flight gauge). */
  readonly requestStarted: () => void
  /** A request counted by requestStarted ended. */
  readonly requestFinished: (request: FinishedRequest) => void
  /** A request never counted in flight ended (a refusal on the raw socket, a WebSocket handshake). */
  readonly requestEnded: (request: FinishedRequest) => void
}

/** What a request that ended tells the metrics and the access log: the request object (proxy-request.ts) or a Refusal. */
export interface EndedRequest {
  readonly requestId: string
  /** The client as srvgate believes it (trustedProxies); the peer's address for a refusal. */
  readonly clientIp: string
  readonly protocol: Protocol | undefined
  readonly upgrade: 'websocket' | undefined
  /** undefined: answered at once (duration 0). */
  readonly startedMs: number | undefined
  /** requestStarted counted it: requestFinished takes it out of the gauge. */
  readonly isInFlight: boolean
  readonly frontend: string | undefined
  readonly backend: Backend | undefined
  readonly split: Split | undefined
  /** The failover target that served it, when not the backend's own discovery. */
  readonly failover: Backend | undefined
  readonly instance: Instance | undefined
  readonly upstreamStatus: number | undefined
  readonly upstreamMs: number | undefined
  readonly retries: number
  readonly retryReasons: readonly string[] | undefined
  readonly error: GatewayError | undefined
  /** Bytes of the request body received from the client (HTTP/1.x and HTTP/2 alike; the head not counted). */
  readonly bytesIn: number
  /** Bytes of the response body sent to the client (the status line and headers not counted, as Apache's %b). */
  readonly bytesOut: number
  /** Its spans (tracing on): ended here, with the answer. */
  readonly trace?: RequestTrace | undefined
}

/** A request answered by srvgate before anything else happened to it (Node could not parse it, CONNECT, a bad handshake). */
export class Refusal implements EndedRequest {
  readonly startedMs = undefined
  readonly isInFlight = false
  readonly frontend = undefined
  readonly backend = undefined
  readonly split = undefined
  readonly failover = undefined
  readonly instance = undefined
  readonly upstreamStatus = undefined
  readonly upstreamMs = undefined
  readonly retries = 0
  readonly retryReasons = undefined
  readonly bytesIn = 0

  constructor (readonly requestId: string, readonly clientIp: string, readonly error: GatewayError, readonly bytesOut: number, readonly protocol: Protocol | undefined = undefined, readonly upgrade: 'websocket' | undefined = undefined) {}
}

/**
 * The one place a request ends: its metrics and its access record, for
 * HTTP/1.1 and HTTP/2 requests, WebSocket handshakes and the refusals written
 * on a raw socket or stream alike.
 */
export class RequestEnd {
  readonly #accessLog: AccessLog
  readonly #metrics: RequestMetrics
  readonly #clock: Clock

  constructor (accessLog: AccessLog, metrics: RequestMetrics, clock: Clock) {
    this.#accessLog = accessLog
    this.#metrics = metrics
    this.#clock = clock
  }

  get clock (): Clock { return this.#clock }

  /** Access records are written (callers skip the work of facts only the record reads). */
  get isLogging (): boolean { return this.#accessLog.isEnabled }

  started (): void { this.#metrics.requestStarted() }

  ended (head: RequestHead | undefined, request: EndedRequest, status: number): void {
    const startedMs = request.startedMs
    const durationMs = startedMs === undefined ? 0 : Math.round((this.#clock.now() - startedMs) * 100) / 100
    const { backend, split, failover, error, upstreamMs } = request
    const finished: FinishedRequest = { frontend: request.frontend, backend: backend?.metricLabel, backendName: backend?.name, status, durationSeconds: durationMs / 1000, protocol: request.protocol, split: split?.metricLabel, failoverTarget: failover?.name, failoverDiscovery: failover?.lookup.name }
    if (request.isInFlight) this.#metrics.requestFinished(finished)
    else this.#metrics.requestEnded(finished)
    const trace = request.trace
    trace?.end({
      status,
      path: head?.url === undefined ? undefined : pathOf(head.url),
      host: head === undefined ? undefined : hostHeaderOf(head.headers),
      clientIp: request.clientIp,
      backend: backend?.name,
      split: split?.name,
      failoverTarget: failover?.name,
      retries: request.retries,
      errorCode: error?.code,
      isUpgrade: request.upgrade !== undefined
    })
    if (!this.#accessLog.isEnabled) return
    this.#accessLog.record(accessRecordOf(head, {
      requestId: request.requestId,
      clientIp: request.clientIp,
      status,
      durationMs,
      bytesIn: request.bytesIn,
      bytesOut: request.bytesOut,
      frontend: request.frontend,
      backend: backend?.name,
      split: split?.name,
      failover: failover?.name,
      failoverDiscovery: failover?.lookup.name,
      instance: request.instance?.key,
      upstreamStatus: request.upstreamStatus,
      upstreamMs: upstreamMs === undefined ? undefined : Math.round(upstreamMs * 100) / 100,
      retries: request.retries,
      retryReasons: request.retryReasons,
      error: error?.code,
      // The why, for the operator (may name an internal address; never sent to the client).
      errorDetail: error?.message,
      upgrade: request.upgrade,
      traceId: trace?.traceId,
      spanId: trace?.spanId
    }, this.#accessLog.query))
  }

  /** A request answered on the raw socket (Node could not parse it, CONNECT, a bad WebSocket handshake): the JSON shape, one end. */
  refuseRaw (socket: Duplex, head: RequestHead | undefined, error: GatewayError, upgrade?: 'websocket'): void {
    const requestId = requestIdOf(head?.headers['x-request-id'])
    const bytesOut = writeRawReply(socket, requestId, errorReply(error))
    const peer = (socket as { remoteAddress?: string }).remoteAddress ?? ''
    this.ended(head, new Refusal(requestId, peer, error, bytesOut, undefined, upgrade), errorReply(error).status)
  }

  /** The same for an HTTP/2 stream that never reaches fastify: an answer with its own :status on the stream. */
  refuseStream (request: Http2ServerRequest, response: Http2ServerResponse, error: GatewayError): void {
    const requestId = requestIdOf(request.headers['x-request-id'])
    const bytesOut = writeStreamReply(response, requestId, errorReply(error))
    this.ended(request, new Refusal(requestId, request.socket?.remoteAddress ?? '', error, bytesOut, 'HTTP/2'), errorReply(error).status)
  }
}
