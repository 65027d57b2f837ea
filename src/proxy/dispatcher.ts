import { Readable } from 'node:stream'
import { Agent, Dispatcher } from 'undici'
import type { Instance } from '../discovery/instance-set.js'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Backend, Outcome } from '../upstream/backend.js'
import { ReplayableBody } from './replayable-body.js'
import { tolerantConnector } from './interim-continue.js'
import type { ClientGone } from './client-gone.js'

/** A pool wait under this share of timeouts.response is left to undici's headersTimeout. */
const POOL_WAIT_SLACK = 0.02
import { classifyError, shouldRetry, type AttemptFailure } from './retry-policy.js'

/** What the dispatcher knows of one proxied request; also read by the access log. */
export type ProxyContext = {
  readonly backend: Backend
  readonly method: string
  readonly hashKey: string | undefined
  readonly tried: Set<string>
  /** Fired when the client has gone: every layer the request reached lets it go. */
  readonly clientGone: ClientGone | undefined
  /** The client's body when reply-from would not forward it (GET, HEAD, TRACE with a body). */
  readonly body: Readable | undefined
  /** Longest pause while the client's body arrives (client.bodyIdleTimeout). */
  readonly bodyIdleTimeoutMs: number
  /** The instance that answered (or was tried last). */
  instance: Instance | undefined
  retries: number
  readonly retryReasons: string[]
  /** When the first byte of the instance's response headers arrived (performance.now()). */
  upstreamStatus: number | undefined
  upstreamMs: number | undefined
}

export type ContextOptions = {
  readonly hashKey?: string | undefined
  readonly clientGone?: ClientGone | undefined
  readonly body?: Readable | undefined
  readonly bodyIdleTimeoutMs?: number
}

export function newProxyContext (backend: Backend, method: string, options: ContextOptions = {}): ProxyContext {
  return {
    backend,
    method,
    hashKey: options.hashKey,
    tried: new Set(),
    clientGone: options.clientGone,
    body: options.body,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs ?? 0,
    instance: undefined,
    retries: 0,
    retryReasons: [],
    upstreamStatus: undefined,
    upstreamMs: undefined
  }
}

export type DispatcherEvents = {
  readonly retried?: (backend: string, reason: string) => void
  readonly attemptFinished?: (backend: string, instance: Instance, outcome: Outcome, durationMs: number) => void
}

type LegacyHandler = {
  onConnect?: (abort: (error?: Error) => void, context?: unknown) => void
  onHeaders?: (statusCode: number, headers: Buffer[], resume: () => void, statusText: string) => boolean
  onData?: (chunk: Buffer) => boolean
  onComplete?: (trailers: Buffer[] | null) => void
  onError?: (error: Error) => void
  onUpgrade?: (statusCode: number, headers: Buffer[], socket: unknown) => void
  onBodySent?: (chunk: unknown) => void
  onRequestSent?: () => void
  onResponseStarted?: () => void
}

const ORIGIN_PREFIX = 'http://'
const ORIGIN_SUFFIX = '.srvgate.invalid'

/**
 * An undici Dispatcher that @fastify/reply-from sends every proxied request
 * through. The request's origin names a ProxyContext, not a host: each attempt
 * picks an instance from the backend (never one already tried), sends the
 * request through a keep-alive pool for that instance, and on a connect
 * failure, or a retryable status for an idempotent method, tries another one,
 * body included. What to retry is decided in retry-policy.ts; this class only
 * carries the decision out and reports each outcome to the backend.
 */
export class GatewayDispatcher extends Dispatcher {
  readonly #contexts = new Map<string, ProxyContext>()
  readonly #agents = new Map<string, Agent>()
  readonly #events: DispatcherEvents
  #nextId = 0

  constructor (events: DispatcherEvents = {}) {
    super()
    this.#events = events
  }

  /** Register a request; the returned origin is what getUpstream hands to reply-from. */
  register (context: ProxyContext): string {
    const token = `r${(this.#nextId = (this.#nextId + 1) % Number.MAX_SAFE_INTEGER)}`
    this.#contexts.set(token, context)
    return `${ORIGIN_PREFIX}${token}${ORIGIN_SUFFIX}`
  }

  /** Forget a request that ended before it was dispatched (a hook error, a client gone). */
  release (origin: string): void {
    this.#contexts.delete(tokenOf(origin))
  }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const token = tokenOf(String(options.origin))
    const context = this.#contexts.get(token)
    this.#contexts.delete(token)
    const legacy = handler as unknown as LegacyHandler
    if (context === undefined) {
      legacy.onError?.(new ProxyError(ErrorCode.UPSTREAM_ERROR, `no proxy context for ${String(options.origin)}`))
      return true
    }
    new FailoverRequest(this, context, options, legacy, this.#events).start()
    return true
  }

  /**
   * One keep-alive Agent per (connect timeout, connection limit): backends
   * sharing both share pools, a pool per instance inside. Keyed by settings,
   * not the backend, so reloads and templated backends reuse warm connections.
   */
  agentFor (backend: Backend): Agent {
    const { timeouts, maxConnectionsPerInstance } = backend.options
    const key = `${timeouts.connectMs}/${maxConnectionsPerInstance}`
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      agent = new Agent({ connect: tolerantConnector({ timeout: timeouts.connectMs }), keepAliveTimeout: 4000, connections: maxConnectionsPerInstance })
      this.#agents.set(key, agent)
    }
    return agent
  }

  /** Let in-flight requests finish, then close every pool. */
  override async close (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.close().catch(() => {}) }))
  }

  /** Close every pool now: queued and running requests fail (drain.timeout has passed). */
  override async destroy (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.destroy().catch(() => {}) }))
  }
}

function tokenOf (origin: string): string {
  return origin.startsWith(ORIGIN_PREFIX) ? origin.slice(ORIGIN_PREFIX.length, origin.length - ORIGIN_SUFFIX.length) : origin
}

/** One attempt on one instance; detached once the request no longer waits on it. */
type Attempt = {
  readonly instance: Instance
  isDetached: boolean
  /** undici's abort for this attempt, once it has a connection. */
  abort: ((error?: Error) => void) | undefined
  timer: NodeJS.Timeout | undefined
  release: () => void
}

/** One client request, over as many attempts as the retry policy allows. */
class FailoverRequest {
  readonly #dispatcher: GatewayDispatcher
  readonly #context: ProxyContext
  readonly #options: Dispatcher.DispatchOptions
  readonly #downstream: LegacyHandler
  readonly #events: DispatcherEvents
  readonly #body: ReplayableBody | undefined
  #isCommitted = false
  #isAborted = false
  #isFinished = false
  #current: Attempt | undefined

  constructor (dispatcher: GatewayDispatcher, context: ProxyContext, options: Dispatcher.DispatchOptions, downstream: LegacyHandler, events: DispatcherEvents) {
    this.#dispatcher = dispatcher
    this.#context = context
    this.#options = options
    this.#downstream = downstream
    this.#events = events
    const body = context.body ?? options.body
    this.#body = body instanceof Readable ? new ReplayableBody(body, context.bodyIdleTimeoutMs) : undefined
  }

  start (): void {
    // reply-from's abort (its response stream destroyed) reaches whichever attempt is running.
    this.#downstream.onConnect?.((error?: Error) => { this.#abandon(error ?? new ProxyError(ErrorCode.CLIENT_GONE, 'request aborted')) })
    const clientGone = this.#context.clientGone
    if (clientGone !== undefined) {
      if (clientGone.isGone) {
        this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left before the request was sent'))
        return
      }
      clientGone.on(() => { this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left')) })
    }
    this.#attempt()
  }

  /**
   * The client has gone (or reply-from gave up): let go of the attempt
   * wherever it is (pool queue, upload, response), count nothing against the
   * instance, and finish once.
   */
  #abandon (error: Error): void {
    if (this.#isAborted || this.#isFinished) return
    this.#isAborted = true
    const current = this.#current
    if (current !== undefined) {
      this.#detach(current)
      current.abort?.(error)
    }
    this.#body?.abandon()
    this.#finishWithError(error)
  }

  #detach (attempt: Attempt): void {
    attempt.isDetached = true
    clearTimeout(attempt.timer)
    attempt.release()
  }

  #attempt (): void {
    const { backend, tried, hashKey } = this.#context
    const instance = backend.pick(tried, hashKey)
    if (instance === undefined) {
      const hadAttempts = tried.size > 0
      this.#fail(new ProxyError(hadAttempts ? ErrorCode.UPSTREAM_CONNECT : ErrorCode.NO_HEALTHY_INSTANCE,
        hadAttempts ? `no instance of ${backend.name} left to try after ${tried.size} attempt(s)` : `no usable instance of ${backend.name}`, backend.name))
      return
    }
    tried.add(instance.key)
    this.#context.instance = instance
    backend.begin(instance)
    const startedMs = performance.now()
    const responseMs = backend.options.timeouts.responseMs
    let isReported = false
    let isReleased = false
    let waitedMs = 0
    let discarding: AttemptFailure | undefined
    const attempt: Attempt = {
      instance,
      isDetached: false,
      abort: undefined,
      timer: undefined,
      // The instance stays busy until its response body is done (or the attempt is let go).
      release: () => {
        if (isReleased) return
        isReleased = true
        backend.end(instance)
      }
    }
    this.#current = attempt
    // The outcome is known at the response headers.
    const report = (outcome: Outcome): void => {
      if (isReported) return
      isReported = true
      backend.report(instance, outcome)
      this.#events.attemptFinished?.(backend.metricLabel, instance, outcome, performance.now() - startedMs)
    }
    // timeouts.response covers the wait for a pooled connection too: a request queued
    // behind a full pool is let go at the deadline (undici cannot unqueue it; it is
    // aborted the moment it gets a connection).
    attempt.timer = setTimeout(() => {
      if (attempt.isDetached) return
      this.#detach(attempt)
      this.#fail(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${instance.key}: no connection free within ${responseMs} ms (maxConnectionsPerInstance ${backend.options.maxConnectionsPerInstance})`, backend.name))
    }, responseMs)
    const attemptHandler: LegacyHandler = {
      onConnect: (abort) => {
        if (attempt.isDetached) {
          abort(new ProxyError(ErrorCode.CLIENT_GONE, 'attempt let go before it had a connection'))
          return
        }
        attempt.abort = abort
        // Uploading the body is bounded by client.bodyIdleTimeout, not by this timer.
        waitedMs = performance.now() - startedMs
        clearTimeout(attempt.timer)
      },
      onRequestSent: () => {
        if (attempt.isDetached) return
        // What is left of timeouts.response after the pool wait bounds the wait for headers.
        // Without a noticeable wait, undici's own headersTimeout (the whole budget) does it: no timer.
        if (waitedMs > responseMs * POOL_WAIT_SLACK) {
          attempt.timer = setTimeout(() => {
            attempt.abort?.(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${instance.key}: no response headers within ${responseMs} ms`, backend.name))
          }, Math.max(1, responseMs - waitedMs))
        }
        this.#downstream.onRequestSent?.()
      },
      onHeaders: (statusCode, headers, resume, statusText) => {
        if (attempt.isDetached) return false
        if (statusCode < 200) return true
        clearTimeout(attempt.timer)
        const failure: AttemptFailure = { kind: 'status', status: statusCode }
        if (statusCode >= 500 && this.#mayRetry(failure)) {
          // Drain and drop this answer; the next instance is asked once it is read.
          discarding = failure
          return true
        }
        report(statusCode >= 500 ? 'status-5xx' : 'success')
        this.#isCommitted = true
        this.#context.upstreamStatus = statusCode
        this.#context.upstreamMs = performance.now() - startedMs
        return this.#downstream.onHeaders?.(statusCode, headers, resume, statusText) ?? true
      },
      onData: (chunk) => {
        if (attempt.isDetached) return false
        return discarding !== undefined ? true : this.#downstream.onData?.(chunk) ?? true
      },
      onComplete: (trailers) => {
        if (attempt.isDetached) return
        this.#detach(attempt)
        if (discarding !== undefined) {
          report('status-5xx')
          this.#retry(`status-${(discarding as { status: number }).status}`)
          return
        }
        this.#isFinished = true
        this.#downstream.onComplete?.(trailers)
      },
      onError: (error) => {
        if (attempt.isDetached) return
        this.#detach(attempt)
        if (this.#isCommitted) {
          this.#finishWithError(error)
          return
        }
        if (this.#body?.hasSourceFailed === true) {
          // The client's upload broke or stalled: not the instance's fault, so nothing counts against it.
          this.#finishWithError(this.#body.failure ?? error)
          return
        }
        const kind = discarding !== undefined ? 'status' : classifyError(error)
        report(kind === 'connect-failure' ? 'connect-failure' : kind === 'timeout' ? 'timeout' : 'reset')
        if (kind === 'connect-failure' || kind === 'reset') {
          if (this.#mayRetry({ kind })) {
            this.#retry(kind)
            return
          }
        }
        if (error instanceof ProxyError) {
          // Our own timer's verdict, already worded.
          this.#fail(error)
          return
        }
        const code = kind === 'timeout' ? ErrorCode.UPSTREAM_TIMEOUT : kind === 'connect-failure' ? ErrorCode.UPSTREAM_CONNECT : kind === 'reset' ? ErrorCode.UPSTREAM_RESET : ErrorCode.UPSTREAM_ERROR
        this.#fail(new ProxyError(code, `${backend.name} instance ${instance.key}: ${error.message}`, backend.name, { cause: error }))
      },
      onUpgrade: (statusCode, headers, socket) => {
        if (attempt.isDetached) {
          (socket as { destroy?: () => void }).destroy?.()
          return
        }
        report('success')
        this.#detach(attempt)
        this.#isCommitted = true
        this.#isFinished = true
        this.#downstream.onUpgrade?.(statusCode, headers, socket)
      },
      onBodySent: (chunk) => { if (!attempt.isDetached) this.#downstream.onBodySent?.(chunk) },
      onResponseStarted: () => { if (!attempt.isDetached) this.#downstream.onResponseStarted?.() }
    }
    const options: Dispatcher.DispatchOptions = {
      ...this.#options,
      origin: instance.origin,
      body: this.#body !== undefined ? this.#body.forAttempt() : this.#options.body,
      headersTimeout: responseMs,
      // Like HAProxy's `timeout server`: the same limit bounds a stall in the middle of a body.
      bodyTimeout: responseMs
    }
    try {
      this.#dispatcher.agentFor(backend).dispatch(options, attemptHandler as unknown as Dispatcher.DispatchHandler)
    } catch (error) {
      attemptHandler.onError?.(error as Error)
    }
  }

  #mayRetry (failure: AttemptFailure): boolean {
    if (this.#isAborted) return false
    return shouldRetry({
      failure,
      method: this.#context.method,
      retries: this.#context.retries,
      policy: this.#context.backend.options.retry,
      canReplayBody: this.#body?.canReplay ?? true
    })
  }

  #retry (reason: string): void {
    this.#context.retries++
    this.#context.retryReasons.push(reason)
    this.#events.retried?.(this.#context.backend.metricLabel, reason)
    this.#attempt()
  }

  #fail (error: ProxyError): void {
    this.#finishWithError(error)
  }

  #finishWithError (error: Error): void {
    if (this.#isFinished) return
    this.#isFinished = true
    this.#downstream.onError?.(error)
  }
}
