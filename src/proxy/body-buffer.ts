import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Clock, Timer } from '../util/clock.js'
import type { ClientGone } from './client-gone.js'

/**
 * The process's budget for request bodies held in memory
 * (client.bufferTotalBytes). A body reserves its declared length before its
 * first byte is read and gives it back when its request ends; a body the
 * budget cannot hold streams instead.
 */
export class BodyBudget {
  #reserved = 0

  /** Bytes reserved now (for /metrics). */
  get reserved (): number { return this.#reserved }

  /** True (and reserved) when `bytes` more fit under `total`. */
  reserve (bytes: number, total: number): boolean {
    if (this.#reserved + bytes > total) return false
    this.#reserved += bytes
    return true
  }

  release (bytes: number): void { this.#reserved = Math.max(0, this.#reserved - bytes) }
}

/**
 * The declared length of a body srvgate should receive whole before it takes
 * an instance connection (nginx's proxy_request_buffering): a content-length
 * up to `limit`. Undefined: the body streams (chunked, or too large).
 */
export function bufferableLength (headers: { readonly 'content-length'?: string | undefined }, limit: number): number | undefined {
  const text = headers['content-length']
  if (text === undefined || limit <= 0) return undefined
  const length = Number(text)
  return Number.isSafeInteger(length) && length > 0 && length <= limit ? length : undefined
}

/**
 * Read a body of `length` bytes whole. A pause longer than `idleTimeoutMs`
 * is CLIENT_TIMEOUT (408), a body Node's parser refuses REQUEST_MALFORMED
 * (400), a client that leaves CLIENT_GONE; nothing is forwarded in any of
 * those cases. While it arrives, no instance connection is held: a slow
 * upload costs the client's connection and its reserved bytes only.
 */
export async function receiveBody (source: Readable, length: number, options: { readonly idleTimeoutMs: number, readonly clock: Clock, readonly clientGone: ClientGone }): Promise<Buffer | ProxyError> {
  return await new Promise((resolve) => {
    const body = Buffer.allocUnsafe(length)
    let received = 0
    let timer: Timer | undefined
    const finish = (result: Buffer | ProxyError): void => {
      timer?.cancel()
      source.off('data', onData)
      source.off('end', onEnd)
      source.off('error', onError)
      options.clientGone.off(onGone)
      resolve(result)
    }
    const arm = (): void => {
      timer?.cancel()
      if (options.idleTimeoutMs > 0) timer = options.clock.setTimeout(() => { finish(new ProxyError(ErrorCode.CLIENT_TIMEOUT, `request body paused longer than client.bodyIdleTimeout (${options.idleTimeoutMs} ms)`)) }, options.idleTimeoutMs)
    }
    const onData = (chunk: Buffer): void => {
      // Node's parser stops at content-length; HTTP/2 DATA beyond it is the client's error.
      if (received + chunk.length > length) {
        finish(new ProxyError(ErrorCode.REQUEST_MALFORMED, `request body longer than its content-length (${length})`))
        return
      }
      chunk.copy(body, received)
      received += chunk.length
      arm()
    }
    const onEnd = (): void => {
      finish(received === length ? body : new ProxyError(ErrorCode.REQUEST_MALFORMED, `request body of ${received} bytes, content-length ${length}`))
    }
    const onError = (error: Error): void => {
      const isMalformed = String((error as NodeJS.ErrnoException).code ?? '').startsWith('HPE_')
      finish(new ProxyError(isMalformed ? ErrorCode.REQUEST_MALFORMED : ErrorCode.CLIENT_GONE, `request body broke: ${error.message}`, undefined, { cause: error }))
    }
    const onGone = (): void => { finish(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left mid-body')) }
    if (options.clientGone.isGone) {
      onGone()
      return
    }
    options.clientGone.on(onGone)
    source.on('data', onData)
    source.once('end', onEnd)
    source.once('error', onError)
    arm()
  })
}

/**
 * RFC 9112 §6.3: a request has a body when it says so (Content-Length other
 * than 0, or Transfer-Encoding). HTTP/2 (RFC 9113 §8.1) needs neither: a
 * request has a body unless its HEADERS frame ended the stream.
 */
export function hasBody (request: { readonly headers: IncomingHttpHeaders, readonly stream?: { readonly endAfterHeaders?: boolean } }): boolean {
  const length = request.headers['content-length']
  if (length !== undefined) return length !== '0'
  if (request.stream?.endAfterHeaders !== undefined) return !request.stream.endAfterHeaders
  return request.headers['transfer-encoding'] !== undefined
}
