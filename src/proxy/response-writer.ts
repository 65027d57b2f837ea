import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { Dispatcher } from 'undici'
import { ErrorCode, ProxyError } from '../errors.js'
import { forwardResponseRawHeaders, forwardTrailers, mayTrail } from './headers.js'
import { applyResponseRules } from './header-rules.js'
import { compressedHeaders, compressor, isCompressible, negotiate, withVary, type Encoding } from './compression.js'
import { firstValue } from './headers.js'
import type { Transform } from 'node:stream'
import { errorReply, findProxyError } from './error-reply.js'
import { grpcMessage, isGrpc, midAnswerStatus, takeTrailersOnly } from './grpc.js'
import type { ProxyRequest } from './proxy-request.js'
import { sendError } from './reply-error.js'
import { failureCode } from './retry-policy.js'
import type { Clock, Timer } from '../util/clock.js'

/** How soon after an instance's bytes a compressed answer is flushed to the client (and at most how often). */
const FLUSH_AFTER_MS = 10

/** What every ResponseWriter of one plugin shares. */
export type WriterDeps = {
  readonly clock: Clock
  /** While draining, HTTP/1.1 answers carry `Connection: close` so clients move to another replica. */
  readonly isDraining: () => boolean
}

/**
 * The end of the line for a proxied request: an undici handler writing the
 * instance's answer straight to the client's ServerResponse. Status and
 * headers go in one writeHead (hop-by-hop headers dropped), each body chunk
 * in one write, with backpressure: when the client reads slower than the
 * instance sends, undici stops reading the instance until the client drains.
 * A client that drains nothing for client.sendTimeout (nginx's send_timeout,
 * HAProxy's timeout client) has its answer cut: a client that stops reading
 * never keeps an instance's connection.
 *
 * This replaces @fastify/reply-from's path (a Readable per response piped
 * into fastify's reply): measured at 87 µs vs 37 µs per request for the same
 * fastify route (docs/BENCHMARKS.md, 2026-11-30).
 */
export class ResponseWriter implements Dispatcher.DispatchHandler {
  readonly #reply: FastifyReply
  readonly #response: ServerResponse
  readonly #request: ProxyRequest
  readonly #deps: WriterDeps
  /** Longest the client may leave the answer unread (client.sendTimeout); 0: no bound. */
  readonly #sendTimeoutMs: number
  #resume: (() => void) | undefined
  #stalled: Timer | undefined
  /** The frontend's compress chose an encoding: the body goes through it (undefined: as the instance sent it). */
  #zip: Transform | undefined
  #flushTimer: Timer | undefined

  constructor (reply: FastifyReply, request: ProxyRequest, deps: WriterDeps) {
    this.#reply = reply
    this.#response = reply.raw
    this.#request = request
    this.#deps = deps
    this.#sendTimeoutMs = request.state?.config.client.sendTimeoutMs ?? 0
  }

  onConnect (): void {}

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const response = this.#response
    if (response.destroyed) return false
    // The instance's status line goes to the client: fastify stops managing the reply.
    this.#reply.hijack()
    const forwarded = forwardResponseRawHeaders(rawHeaders)
    // The frontend's header rules on the instance's answer, before srvgate's own headers (they cannot touch those).
    const decision = this.#request.decision
    const rules = decision?.frontend.headers?.response
    let headers = rules === undefined ? forwarded : applyResponseRules(forwarded, rules, decision?.env)
    const compress = decision?.frontend.compress
    if (compress !== undefined && isCompressible(statusCode, headers, compress)) {
      // The answer depends on Accept-Encoding whichever this client sent: caches must know.
      withVary(headers)
      const encoding = negotiate(firstValue(this.#reply.request.headers['accept-encoding']))
      // A HEAD gets the headers its GET would, and no body to compress.
      const isHead = this.#reply.request.method === 'HEAD'
      if (encoding !== undefined && (isHead || this.#compress(encoding))) headers = compressedHeaders(headers, encoding)
    }
    // gRPC's trailers-only answer: Node sends the headers and the stream's end apart, so its status and metadata go as trailers.
    const trailers = this.#request.protocol === 'HTTP/2' ? takeTrailersOnly(headers, mayTrail) : undefined
    this.#addOwnHeaders(headers)
    response.writeHead(statusCode, headers)
    if (trailers !== undefined) response.addTrailers(trailers)
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#response.destroyed) return false
    const zip = this.#zip
    if (zip === undefined) return this.#write(chunk)
    // Flushed FLUSH_AFTER_MS after bytes came, at most that often: a streamed answer (server-sent events,
    // progressive HTML) reaches the client as it comes, not when 16 KiB of output pile up, and an
    // instance that trickles a byte at a time does not get a flush (and its bytes of framing) per byte.
    if (this.#flushTimer === undefined) this.#flushTimer = this.#deps.clock.setTimeout(this.#flush, FLUSH_AFTER_MS)
    if (zip.write(chunk)) return true
    zip.once('drain', this.#resumeInstance)
    return false
  }

  onComplete (trailers?: string[] | null): void {
    this.#stalled?.cancel()
    this.#flushTimer?.cancel()
    // gRPC's status comes in trailers: they go on to the client (over HTTP/1.1, when the answer is chunked).
    if (trailers !== null && trailers !== undefined && trailers.length > 0 && !this.#addTrailers(trailers)) return
    if (this.#zip !== undefined) this.#zip.end()
    else this.#response.end()
  }

  onError (error: Error): void {
    this.#stalled?.cancel()
    this.#flushTimer?.cancel()
    this.#zip?.destroy()
    // Before the status line, srvgate's JSON error; errors from the pools are ProxyErrors, anything else gets its code from the one vocabulary.
    const ours = findProxyError(error) ?? new ProxyError(failureCode((error as { cause?: unknown }).cause ?? error), error.message, undefined, { cause: error })
    void sendError(this.#reply, ours)
    if (!this.#response.headersSent || this.#response.writableFinished) return
    // A gRPC call mid-answer ends with a status saying why (a client reads it as the call's outcome).
    if (this.#request.protocol === 'HTTP/2' && isGrpc(this.#reply.request.headers['content-type'])) {
      this.#response.addTrailers({ 'grpc-status': String(midAnswerStatus(ours)), 'grpc-message': grpcMessage(`srvgate: ${errorReply(ours).body.error ?? ''}`) })
      this.#response.end()
      return
    }
    // Mid-body, the only honest thing left is to cut the connection (the client sees a short answer).
    this.#response.destroy()
  }

  /** False: they could not be, and the answer was cut. */
  #addTrailers (raw: ReadonlyArray<Buffer | string>): boolean {
    try {
      this.#response.addTrailers(forwardTrailers(raw))
      return true
    } catch (error) {
      // A field Node will not write (bad characters): the answer is cut rather than ended without it.
      this.#request.error ??= new ProxyError(ErrorCode.UPSTREAM_RESET, `the instance's trailers cannot be forwarded: ${(error as Error).message}`)
      this.#response.destroy()
      return false
    }
  }

  /** A chunk to the client; false when it must drain first (the client reads slower than the answer comes). */
  #write (chunk: Buffer): boolean {
    // The body's bytes sent, for the access log (Apache's %b): the same count over HTTP/1.x and HTTP/2, compressed ones when compressed.
    this.#request.bytesOut += chunk.length
    if (this.#response.write(chunk)) return true
    this.#response.once('drain', this.#onDrain)
    if (this.#sendTimeoutMs > 0) this.#stalled = this.#deps.clock.setTimeout(this.#onStalled, this.#sendTimeoutMs)
    return false
  }

  /** The body through `encoding`, with back-pressure both ways: the client pauses the compressor, the compressor the instance. False: no compressor to spare. */
  #compress (encoding: Encoding): boolean {
    const zip = compressor(encoding)
    if (zip === undefined) return false
    this.#zip = zip
    zip.on('data', (chunk: Buffer) => {
      if (!this.#response.destroyed && !this.#write(chunk)) zip.pause()
    })
    zip.once('end', () => { this.#response.end() })
    zip.once('error', (error) => { this.#response.destroy(error) })
    return true
  }

  readonly #flush = (): void => {
    this.#flushTimer = undefined
    const zip = this.#zip
    if (zip !== undefined && !zip.destroyed && !zip.writableEnded) (zip as Transform & { flush: () => void }).flush()
  }

  readonly #resumeInstance = (): void => { this.#resume?.() }

  /** The client drained: on with the compressor, or with the instance. */
  readonly #onDrain = (): void => {
    this.#stalled?.cancel()
    if (this.#zip !== undefined) this.#zip.resume()
    else this.#resume?.()
  }

  readonly #onStalled = (): void => {
    this.#response.off('drain', this.#onDrain)
    // The client read nothing for client.sendTimeout: the answer is cut, and the request abandoned as for a client that left.
    this.#request.error ??= new ProxyError(ErrorCode.CLIENT_TIMEOUT, `the client read none of the answer for client.sendTimeout (${this.#sendTimeoutMs} ms)`)
    this.#response.destroy()
  }

  /**
   * x-request-id, Strict-Transport-Security on HTTPS, and, while draining,
   * Connection: close on HTTP/1.1 (HTTP/2 has no such field; its connections
   * are told to go with GOAWAY): what onRequest and onSend give fastify's own replies.
   */
  #addOwnHeaders (headers: string[]): void {
    const request = this.#request
    headers.push('x-request-id', request.requestId)
    const hsts = request.isSecure ? request.state?.config.tls?.hsts : undefined
    if (hsts !== undefined) headers.push('strict-transport-security', hsts)
    if (request.protocol !== 'HTTP/2' && this.#deps.isDraining()) headers.push('connection', 'close')
  }
}
