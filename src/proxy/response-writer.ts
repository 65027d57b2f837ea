import type { ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { forwardResponseRawHeaders } from './headers.js'
import type { Clock, Timer } from '../util/clock.js'

export type ResponseWriterOptions = {
  /** Adds the headers srvgate puts on every answer (x-request-id; Connection: close while draining) to a flat name, value list. */
  readonly addOwnHeaders: (headers: string[]) => void
  /** The request failed: before the status line it gets srvgate's JSON error; after, the connection is cut. */
  readonly onError: (error: Error) => void
  /** The instance's status line is about to go to the client (fastify stops managing the reply). */
  readonly onCommit: () => void
  /** Longest the client may leave the answer unread (client.sendTimeout); 0: no bound. */
  readonly sendTimeoutMs: number
  readonly clock: Clock
  /** The client read nothing for sendTimeoutMs: the answer is cut, and the request abandoned as for a client that left. */
  readonly onSendTimeout: () => void
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
  readonly #response: ServerResponse
  readonly #options: ResponseWriterOptions
  #resume: (() => void) | undefined
  #stalled: Timer | undefined

  constructor (response: ServerResponse, options: ResponseWriterOptions) {
    this.#response = response
    this.#options = options
  }

  onConnect (): void {}

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const response = this.#response
    if (response.destroyed) return false
    this.#options.onCommit()
    const headers = forwardResponseRawHeaders(rawHeaders)
    this.#options.addOwnHeaders(headers)
    response.writeHead(statusCode, headers)
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    const response = this.#response
    if (response.destroyed) return false
    if (response.write(chunk)) return true
    // The client reads slower: undici pauses the instance's socket until the client drains.
    response.once('drain', this.#onDrain)
    const { sendTimeoutMs, clock } = this.#options
    if (sendTimeoutMs > 0) this.#stalled = clock.setTimeout(this.#onStalled, sendTimeoutMs)
    return false
  }

  onComplete (): void {
    this.#stalled?.cancel()
    this.#response.end()
  }

  onError (error: Error): void {
    this.#stalled?.cancel()
    this.#options.onError(error)
    // Mid-body, the only honest thing left is to cut the connection (the client sees a short answer).
    if (this.#response.headersSent && !this.#response.writableFinished) this.#response.destroy()
  }

  readonly #onDrain = (): void => {
    this.#stalled?.cancel()
    this.#resume?.()
  }

  readonly #onStalled = (): void => {
    this.#response.off('drain', this.#onDrain)
    this.#options.onSendTimeout()
    this.#response.destroy()
  }
}
