import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants

/**
 * Codes of what can go wrong on an HTTP/2 connection to an instance, in the
 * words retry-policy.ts classifies: a refused stream and a connect that timed
 * out are "nothing was sent" (gRPC's rule for a retry), the others resets or
 * timeouts.
 */
export const H2Code = {
  CONNECT_TIMEOUT: 'SG_H2_CONNECT_TIMEOUT',
  REFUSED_STREAM: 'SG_H2_REFUSED_STREAM',
  STREAM_CANCELLED: 'SG_H2_STREAM_CANCELLED',
  STREAM_RESET: 'SG_H2_STREAM_RESET',
  HEADERS_TIMEOUT: 'SG_H2_HEADERS_TIMEOUT',
  BODY_TIMEOUT: 'SG_H2_BODY_TIMEOUT',
  UNSUPPORTED: 'SG_H2_UNSUPPORTED'
} as const

export class H2UpstreamError extends Error {
  override name = 'H2UpstreamError' as const
  readonly code: string
  /** The RST_STREAM code the instance sent, when it reset the stream. */
  readonly rstCode: number | undefined
  constructor (code: string, message: string, rstCode?: number) {
    super(message)
    this.code = code
    this.rstCode = rstCode
  }
}

/** undici's handler shape (the one Attempt implements), as this pool calls it. */
export type LegacyHandler = {
  onConnect?: (abort: (error?: Error) => void) => void
  onHeaders?: (statusCode: number, headers: Buffer[], resume: () => void, statusText: string) => boolean
  onData?: (chunk: Buffer) => boolean
  /** The trailers as name/value pairs (undici types them so; over HTTP/1.1 it gives buffers). */
  onComplete?: (trailers: string[] | null) => void
  onError?: (error: Error) => void
  onBodySent?: (chunkSize: number, totalBytesSent: number) => void
  onResponseStarted?: () => void
  onRequestSent?: () => void
}


/** Request fields HTTP/2 forbids (RFC 9113 §8.2.2), and the Host field (it becomes :authority). */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings'])

/** One request's stream: undici's handler calls, from node:http2's events. */
export class H2Exchange {
  readonly #stream: ClientHttp2Stream
  readonly #handler: LegacyHandler
  readonly #bodyTimeoutMs: number
  #isDone = false
  #hasResponse = false
  #trailers: IncomingHttpHeaders | undefined
  /** The answer's declared content-length (-1: none), and the bytes that came. */
  #declared = -1
  #received = 0
  #error: Error | undefined

  constructor (stream: ClientHttp2Stream, handler: LegacyHandler, options: Dispatcher.DispatchOptions) {
    this.#stream = stream
    this.#handler = handler
    this.#bodyTimeoutMs = options.bodyTimeout ?? 0
    // First of all: a stream let go at once (its client gone) still meets its session's GOAWAY or reset, and an
    // 'error' nobody listens to would end the process.
    stream.on('error', (error) => { this.#error ??= error })
    // Node's stream timeout counts idle time: for headers first, then between the answer's chunks.
    stream.on('timeout', () => { this.#timedOut() })
    stream.setTimeout(options.headersTimeout ?? 0)
  }

  begin (body: Readable | Buffer | string | undefined): void {
    const stream = this.#stream
    this.#handler.onConnect?.((error?: Error) => { this.#abort(error) })
    if (this.#isDone) return
    stream.once('response', (headers) => { this.#response(headers) })
    stream.once('trailers', (trailers) => { this.#trailers = trailers })
    stream.once('end', () => { this.#ended() })
    if (body === undefined) this.#handler.onRequestSent?.()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      stream.end(body, () => { this.#sent(Buffer.byteLength(body)) })
    } else this.#pipe(body)
  }

  /** The instance's GOAWAY left this stream out (its id past the last it will process): nothing was processed, another instance may take it. */
  refusedByGoaway (lastStreamId: number): void {
    const id = this.#stream.id
    if (this.#isDone || id === undefined || id <= lastStreamId) return
    this.#isDone = true
    if (!this.#stream.closed) this.#stream.close(NGHTTP2_CANCEL)
    this.#handler.onError?.(new H2UpstreamError(H2Code.REFUSED_STREAM, `the instance's GOAWAY (last stream ${lastStreamId}) left this stream (${id}) unprocessed`, NGHTTP2_REFUSED_STREAM))
  }

  /** The stream closed: an answer that did not end is an error, named by how it closed. */
  closed (): void {
    if (this.#isDone) return
    this.#isDone = true
    this.#handler.onError?.(this.#closeError())
  }

  #closeError (): Error {
    const code = this.#stream.rstCode
    if (code === NGHTTP2_REFUSED_STREAM) return new H2UpstreamError(H2Code.REFUSED_STREAM, 'the instance refused the stream (REFUSED_STREAM): nothing was processed', code)
    // Node's own error for a reset (ERR_HTTP2_STREAM_ERROR) says less than the code: ours carries it.
    if (this.#error !== undefined && (this.#error as { code?: unknown }).code !== 'ERR_HTTP2_STREAM_ERROR') return this.#error
    if (code === NGHTTP2_CANCEL) return new H2UpstreamError(H2Code.STREAM_CANCELLED, 'the instance cancelled the stream (RST_STREAM CANCEL)', code)
    return new H2UpstreamError(H2Code.STREAM_RESET, `the instance reset the stream (RST_STREAM ${code ?? '?'})`, code)
  }

  #pipe (body: Readable): void {
    const stream = this.#stream
    let total = 0
    const resume = (): void => { body.resume() }
    stream.on('drain', resume)
    body.on('data', (chunk: Buffer) => {
      if (this.#isDone) return
      total += chunk.length
      this.#handler.onBodySent?.(chunk.length, total)
      if (!stream.write(chunk)) body.pause()
    })
    body.once('end', () => {
      stream.off('drain', resume)
      if (!this.#isDone) stream.end(() => { this.#sent(total) })
    })
    // The client's side failed (gone, too slow): its error ends the attempt, and the instance's stream is cancelled.
    body.once('error', (error) => { this.#abort(error) })
  }

  #sent (total: number): void {
    if (this.#isDone) return
    if (total > 0) this.#handler.onBodySent?.(0, total)
    this.#handler.onRequestSent?.()
  }

  #response (headers: IncomingHttpHeaders): void {
    if (this.#isDone) return
    const stream = this.#stream
    this.#hasResponse = true
    stream.setTimeout(this.#bodyTimeoutMs)
    this.#handler.onResponseStarted?.()
    const status = Number(headers[':status'])
    const length = headers['content-length']
    if (typeof length === 'string' && /^\d+$/.test(length)) this.#declared = Number(length)
    // While the client holds the answer back, the instance's silence is not a stall (client.sendTimeout bounds the client).
    const pause = (): void => {
      stream.pause()
      stream.setTimeout(0)
    }
    const resume = (): void => {
      if (this.#isDone) return
      stream.setTimeout(this.#bodyTimeoutMs)
      stream.resume()
    }
    if (this.#handler.onHeaders?.(status, rawHeaders(headers), resume, '') === false) pause()
    if (this.#isDone) return
    stream.on('data', (chunk: Buffer) => {
      this.#received += chunk.length
      if (!this.#isDone && this.#handler.onData?.(chunk) === false) pause()
    })
  }

  /** Every byte of the answer was read (the trailers, if any, came before): complete. */
  #ended (): void {
    if (this.#isDone) return
    if (!this.#hasResponse) return
    // Fewer bytes than declared is an answer cut short, whatever ended the stream (undici's rule too).
    if (this.#declared >= 0 && this.#received !== this.#declared) {
      this.#abort(new H2UpstreamError(H2Code.STREAM_RESET, `the instance's answer ended after ${this.#received} of its ${this.#declared} bytes`))
      return
    }
    this.#isDone = true
    this.#handler.onComplete?.(this.#trailers === undefined ? null : trailerPairs(this.#trailers))
  }

  #timedOut (): void {
    if (this.#hasResponse) this.#abort(new H2UpstreamError(H2Code.BODY_TIMEOUT, `no bytes from the instance for ${this.#bodyTimeoutMs} ms`))
    else this.#abort(new H2UpstreamError(H2Code.HEADERS_TIMEOUT, 'no response headers from the instance in time'))
  }

  /** Let go (the client left, a timeout): the instance is told with RST_STREAM CANCEL. */
  #abort (error: Error | undefined): void {
    if (this.#isDone) return
    this.#isDone = true
    if (!this.#stream.closed) this.#stream.close(NGHTTP2_CANCEL)
    this.#handler.onError?.(error ?? new H2UpstreamError(H2Code.STREAM_CANCELLED, 'request aborted'))
  }
}

/** The request's fields as HTTP/2 takes them: pseudo-headers first, connection fields left out. */
export function requestHeaders (options: Dispatcher.DispatchOptions, origin: string): OutgoingHttpHeaders {
  const given = (options.headers ?? {}) as Record<string, string | string[] | undefined>
  const url = new URL(origin)
  const headers: OutgoingHttpHeaders = {
    ':method': options.method,
    ':path': options.path,
    ':scheme': url.protocol === 'https:' ? 'https' : 'http',
    ':authority': typeof given.host === 'string' ? given.host : url.host
  }
  for (const name in given) {
    const value = given[name]
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (CONNECTION_FIELDS.has(lower) || lower.charCodeAt(0) === 0x3a) continue
    // TE is allowed only as "trailers" (RFC 9113 §8.2.2).
    if (lower === 'te') {
      if (String(value).toLowerCase().includes('trailers')) headers.te = 'trailers'
      continue
    }
    headers[lower] = value
  }
  return headers
}

/** Header fields as undici hands them to a handler: name and value buffers, pseudo-headers left out. */
function rawHeaders (headers: IncomingHttpHeaders): Buffer[] {
  const raw: Buffer[] = []
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue
    const value = headers[name]
    if (value === undefined) continue
    if (Array.isArray(value)) for (const item of value) raw.push(Buffer.from(name, 'latin1'), Buffer.from(item, 'latin1'))
    else raw.push(Buffer.from(name, 'latin1'), Buffer.from(String(value), 'latin1'))
  }
  return raw
}

/** Trailer fields as name/value strings, pseudo-headers left out. */
function trailerPairs (trailers: IncomingHttpHeaders): string[] {
  return rawHeaders(trailers).map((part) => part.toString('latin1'))
}
