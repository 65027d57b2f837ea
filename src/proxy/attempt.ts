import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Instance } from '../discovery/instance-set.js'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Backend, Outcome } from '../upstream/backend.js'
import type { Clock, Timer } from '../util/clock.js'
import type { ConnectionWaits, WaitingAttempt } from './connection-waits.js'
import type { UploadSlots } from './upload-slots.js'
import type { AttemptSpan, RequestTrace } from '../tracing/request-trace.js'

/**
 * What an attempt tells the request it belongs to, in the shape of undici's
 * handler: results only flow up. The request judges them (retry-policy.ts),
 * counts them against the instance and decides what comes next; the attempt
 * only keeps the mechanics of one instance's connection.
 */
export interface AttemptReports {
  onAttemptHeaders: (attempt: Attempt, statusCode: number, headers: Buffer[], resume: () => void, statusText: string) => boolean
  onAttemptData: (chunk: Buffer) => boolean
  onAttemptComplete: (attempt: Attempt, trailers: string[] | null) => void
  /** undici (or our own headers timer) failed the attempt. */
  onAttemptError: (attempt: Attempt, error: Error) => void
  /**
   * The attempt's wait for a connection or an upload slot ran past what was
   * left of timeouts.response: nothing reached the instance, so nothing is
   * counted against it, and the request ends 504.
   */
  onAttemptWaitExpired: (attempt: Attempt, error: ProxyError) => void
  onAttemptUpgrade: (attempt: Attempt, statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex) => void
  onAttemptBodySent: (chunkSize: number, totalBytesSent: number) => void
  onAttemptResponseStarted: () => void
  /** The pool gave the attempt a connection, after `waitedMs` (tracing's pool-wait event). */
  onAttemptConnected: (attempt: Attempt, waitedMs: number) => void
}


/** What the metrics are told of attempts (admin/metrics.ts). */
export type DispatcherEvents = {
  /** An attempt is about to go to `instance` (`attempt` counts from 1). */
  readonly picked?: (backend: string, instance: Instance, attempt: number) => void
  readonly retried?: (backend: string, reason: string) => void
  readonly attemptFinished?: (backend: string, instance: Instance, outcome: Outcome, durationMs: number) => void
}

/** What every attempt of one pools object shares. */
export type AttemptDeps = {
  readonly clock: Clock
  readonly waits: ConnectionWaits
  /** Streamed bodies' share of each instance's connections. */
  readonly uploads: UploadSlots
}

/** A pool wait under this share of timeouts.response is left to undici's headersTimeout. */
const POOL_WAIT_SLACK = 0.02

/**
 * One attempt on one instance, as an undici handler. It keeps the instance
 * busy until its response is done, bounds the wait for a pooled connection
 * and then for headers with one budget (timeouts.response), and reports every
 * result to its request. Once let go (the client left, the budget ran out in
 * the pool queue), undici's later calls are ignored: a request undici cannot
 * unqueue is aborted the moment it gets a connection.
 */
export class Attempt implements Dispatcher.DispatchHandler, WaitingAttempt {
  /** The backend of the chain the instance belongs to: its health counts the attempt. */
  readonly backend: Backend
  readonly instance: Instance
  /** Its CLIENT span, when the request is traced. */
  span: AttemptSpan | undefined = undefined
  readonly #reports: AttemptReports
  readonly #deps: AttemptDeps
  readonly #responseMs: number
  readonly #startedMs: number
  #waitedMs = 0
  #isDetached = false
  #isReleased = false
  #abort: ((error?: Error) => void) | undefined
  #timer: Timer | undefined
  /** Gives back the upload slot this attempt's streamed body holds. */
  #releaseSlot: (() => void) | undefined
  /** Leaves the queue for an upload slot, while waiting in it. */
  #withdrawWait: (() => void) | undefined
  /** A gRPC call's deadline (grpc-timeout): it bounds the whole exchange, answer body included. */
  #deadline: Timer | undefined

  constructor (reports: AttemptReports, deps: AttemptDeps, backend: Backend, instance: Instance, deadlineAtMs?: number) {
    this.#reports = reports
    this.#deps = deps
    this.backend = backend
    this.instance = instance
    this.#responseMs = backend.options.timeouts.responseMs
    this.#startedMs = deps.clock.now()
    backend.begin(instance)
    if (deadlineAtMs !== undefined) this.#deadline = deps.clock.setTimeout(() => { this.#deadlinePassed() }, Math.max(1, deadlineAtMs - this.#startedMs))
  }

  /** The call's own deadline passed: the instance's stream is cancelled, and nothing is counted against it (the budget was the client's). */
  #deadlinePassed (): void {
    if (this.#isDetached) return
    const error = new ProxyError(ErrorCode.DEADLINE_EXCEEDED, `the call's grpc-timeout passed (${this.backend.name} instance ${this.instance.key})`, this.backend.name)
    if (this.#abort !== undefined) {
      this.#abort(error)
      return
    }
    this.#detach()
    this.#reports.onAttemptWaitExpired(this, error)
  }

  get elapsedMs (): number { return this.#deps.clock.now() - this.#startedMs }

  /**
   * Called once undici's dispatch has returned. A connection handed over
   * inside dispatch (onConnect came already) needs no bound. Otherwise the
   * request waits in the pool, or for a new connection, and timeouts.response
   * covers that wait too: ConnectionWaits looks again a millisecond later
   * (nearly every attempt has its connection by then) and calls boundWait.
   */
  dispatched (): void {
    if (this.#isDetached || this.#abort !== undefined) return
    this.#deps.waits.add(this)
  }

  /** Still no connection: what is left of timeouts.response bounds the wait. */
  boundWait (): void {
    if (this.#isDetached || this.#abort !== undefined) return
    this.#timer = this.#deps.clock.setTimeout(() => { this.#poolWaitExpired() }, Math.max(1, this.#responseMs - this.elapsedMs))
  }

  // A method, not an arrow field: the closure is made only for the rare attempt that waits.
  #poolWaitExpired (): void {
    if (this.#isDetached || this.#abort !== undefined) return
    this.#detach()
    const backend = this.backend
    this.#reports.onAttemptWaitExpired(this, new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${this.instance.key}: no connection free within ${this.#responseMs} ms (maxConnectionsPerInstance ${backend.options.maxConnectionsPerInstance})`, backend.name))
  }

  /**
   * A streamed body's slot at the instance: true when taken now; otherwise
   * `send` runs once one frees, and what is left of timeouts.response bounds
   * the wait (504), as it bounds a wait in the pool.
   */
  takeUploadSlot (origin: string, send: () => void): boolean {
    const slots = this.#deps.uploads
    const cap = Math.max(1, Math.floor(this.backend.options.maxConnectionsPerInstance / 2))
    const granted = (): void => {
      this.#withdrawWait = undefined
      this.#timer?.cancel()
      this.#timer = undefined
      this.#releaseSlot = () => { slots.give(origin) }
      // Let go while it waited: the slot goes on to the next upload.
      if (this.#isDetached) this.#giveSlot()
      else send()
    }
    if (slots.take(origin, cap, granted)) {
      this.#releaseSlot = () => { slots.give(origin) }
      return true
    }
    this.#withdrawWait = () => { slots.withdraw(origin, granted) }
    const backend = this.backend
    this.#timer = this.#deps.clock.setTimeout(() => {
      if (this.#isDetached) return
      this.#detach()
      this.#reports.onAttemptWaitExpired(this, new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${this.instance.key}: no upload slot free within ${this.#responseMs} ms (streamed bodies hold at most ${cap} of maxConnectionsPerInstance ${backend.options.maxConnectionsPerInstance})`, backend.name))
    }, this.#responseMs)
    return false
  }

  #giveSlot (): void {
    const release = this.#releaseSlot
    this.#releaseSlot = undefined
    release?.()
  }

  /** The request no longer waits on this attempt: release the instance and abort what undici has. */
  letGo (error: Error): void {
    this.#detach()
    this.#abort?.(error)
  }

  onConnect (abort: (error?: Error) => void): void {
    if (this.#isDetached) {
      abort(new ProxyError(ErrorCode.CLIENT_GONE, 'attempt let go before it had a connection'))
      return
    }
    this.#abort = abort
    // Uploading the body is bounded by client.bodyIdleTimeout, not by the wait's timer.
    this.#waitedMs = this.elapsedMs
    this.#timer?.cancel()
    this.#timer = undefined
    if (this.span !== undefined) this.#reports.onAttemptConnected(this, this.#waitedMs)
  }

  /** undici core calls it once the whole request is written (not in its types). */
  onRequestSent (): void {
    // The body is all sent: the connection is an ordinary request's now.
    this.#giveSlot()
    if (this.#isDetached) return
    // What is left of timeouts.response after the pool wait bounds the wait for headers.
    // Without a noticeable wait, undici's own headersTimeout (the whole budget) does it: no timer.
    if (this.#waitedMs > this.#responseMs * POOL_WAIT_SLACK) {
      this.#timer = this.#deps.clock.setTimeout(() => { this.#headersExpired() }, Math.max(1, this.#responseMs - this.#waitedMs))
    }
  }

  #headersExpired (): void {
    this.#abort?.(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${this.backend.name} instance ${this.instance.key}: no response headers within ${this.#responseMs} ms`, this.backend.name))
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#isDetached) return false
    // 1xx (103 Early Hints): not the answer.
    if (statusCode < 200) return true
    this.#timer?.cancel()
    return this.#reports.onAttemptHeaders(this, statusCode, headers, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    if (this.#isDetached) return false
    return this.#reports.onAttemptData(chunk)
  }

  onComplete (trailers: string[] | null): void {
    if (this.#isDetached) return
    this.#detach()
    this.#reports.onAttemptComplete(this, trailers)
  }

  onError (error: Error): void {
    if (this.#isDetached) return
    this.#detach()
    this.#reports.onAttemptError(this, error)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    if (this.#isDetached) {
      socket.destroy()
      return
    }
    this.#detach()
    this.#reports.onAttemptUpgrade(this, statusCode, headers, socket)
  }

  onBodySent (chunkSize: number, totalBytesSent: number): void {
    if (!this.#isDetached) this.#reports.onAttemptBodySent(chunkSize, totalBytesSent)
  }

  onResponseStarted (): void {
    if (!this.#isDetached) this.#reports.onAttemptResponseStarted()
  }

  /** The instance stays busy until its response body is done, or the attempt is let go. */
  #detach (): void {
    this.#isDetached = true
    this.#timer?.cancel()
    this.#deadline?.cancel()
    this.#withdrawWait?.()
    this.#withdrawWait = undefined
    this.#giveSlot()
    if (this.#isReleased) return
    this.#isReleased = true
    this.backend.end(this.instance)
  }
}

/**
 * A traced request's attempt: its CLIENT span, and the instance told of it
 * in `traceparent` (not the client's own). Headers are traced as the edges
 * forward them, a plain object (undici's array and iterable forms are not).
 */
export function traceAttempt (trace: RequestTrace, attempt: Attempt, number: number, options: Dispatcher.DispatchOptions): void {
  const headers = options.headers
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Symbol.iterator in headers) return
  const traced = trace.attempt(attempt.backend.name, attempt.instance, number, headers)
  attempt.span = traced.span
  options.headers = traced.headers
}
