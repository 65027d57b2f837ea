import type { ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { forwardResponseRawHeaders } from './headers.js'

export type ResponseWriterOptions = {
  /** Adds the headers srvgate puts on every answer (x-request-id; Connection: close while draining) to a flat name, value list. */
  readonly addOwnHeaders: (headers: string[]) => void
  /** The request failed: before the status line it gets srvgate's JSON error; after, the connection is cut. */
  readonly onError: (error: Error) => void
  /** The instance's status line is about to go to the client (fastify stops managing the reply). */
  readonly onCommit: () => void
}

/**
 * The end of the line for a proxied request: an undici handler writing the
 * instance's answer straight to the client's ServerResponse. Status and
 * headers go in one writeHead (hop-by-hop headers dropped), each body chunk
 * in one write, with backpressure: when the client reads slower than the
 * instance sends, undici stops reading the instance until the client drains.
 *
 * This replaces @fastify/reply-from's path (a Readable per response piped
 * into fastify's reply): measured at 87 µs vs 37 µs per request for the same
 * fastify route (docs/BENCHMARKS.md, 2026-11-30).
 */
export class ResponseWriter implements Dispatcher.DispatchHandler {
  readonly #response: ServerResponse
  readonly #options: ResponseWriterOptions
  #resume: (() => void) | undefined

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
    return false
  }

  onComplete (): void {
    this.#response.end()
  }

  onError (error: Error): void {
    this.#options.onError(error)
    // Mid-body, the only honest thing left is to cut the connection (the client sees a short answer).
    if (this.#response.headersSent && !this.#response.writableFinished) this.#response.destroy()
  }

  readonly #onDrain = (): void => { this.#resume?.() }
}
