import { Readable } from 'node:stream'
import { Agent, Dispatcher } from 'undici'
import type { Instance } from '../discovery/instance-set.js'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Backend, Outcome } from '../upstream/backend.js'
import { ReplayableBody } from './replayable-body.js'
import { classifyError, shouldRetry, type AttemptFailure } from './retry-policy.js'

/** What the dispatcher knows of one proxied request; also read by the access log. */
export type ProxyContext = {
  readonly backend: Backend
  readonly method: string
  readonly hashKey: string | undefined
  readonly tried: Set<string>
  /** The instance that answered (or was tried last). */
  instance: Instance | undefined
  retries: number
  readonly retryReasons: string[]
}

export function newProxyContext (backend: Backend, method: string, hashKey: string | undefined): ProxyContext {
  return { backend, method, hashKey, tried: new Set(), instance: undefined, retries: 0, retryReasons: [] }
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
   * One keep-alive Agent per connect timeout (backends sharing one share
   * pools), a pool per instance inside. Keyed by the timeout, not the backend,
   * so reloads and templated backends reuse warm connections.
   */
  agentFor (backend: Backend): Agent {
    const key = String(backend.options.timeouts.connectMs)
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      agent = new Agent({ connect: { timeout: backend.options.timeouts.connectMs }, keepAliveTimeout: 4000, connections: 256 })
      this.#agents.set(key, agent)
    }
    return agent
  }

  override async close (): Promise<void> {
    await Promise.all([...this.#agents.values()].map(async (agent) => { await agent.close() }))
  }

  override async destroy (): Promise<void> {
    await Promise.all([...this.#agents.values()].map(async (agent) => { await agent.destroy() }))
  }
}

function tokenOf (origin: string): string {
  return origin.startsWith(ORIGIN_PREFIX) ? origin.slice(ORIGIN_PREFIX.length, origin.length - ORIGIN_SUFFIX.length) : origin
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
  #abortCurrent: ((error?: Error) => void) | undefined

  constructor (dispatcher: GatewayDispatcher, context: ProxyContext, options: Dispatcher.DispatchOptions, downstream: LegacyHandler, events: DispatcherEvents) {
    this.#dispatcher = dispatcher
    this.#context = context
    this.#options = options
    this.#downstream = downstream
    this.#events = events
    const body = options.body
    this.#body = body instanceof Readable ? new ReplayableBody(body) : undefined
  }

  start (): void {
    // The client's abort reaches whichever attempt is running.
    this.#downstream.onConnect?.((error?: Error) => {
      this.#isAborted = true
      this.#abortCurrent?.(error)
    })
    this.#attempt()
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
    let isReported = false
    let isReleased = false
    let discarding: AttemptFailure | undefined
    // The outcome is known at the response headers; the instance stays busy until the body is done.
    const report = (outcome: Outcome): void => {
      if (isReported) return
      isReported = true
      backend.report(instance, outcome)
      this.#events.attemptFinished?.(backend.metricLabel, instance, outcome, performance.now() - startedMs)
    }
    const release = (): void => {
      if (isReleased) return
      isReleased = true
      backend.end(instance)
    }
    const attemptHandler: LegacyHandler = {
      onConnect: (abort) => {
        this.#abortCurrent = abort
        if (this.#isAborted) abort()
      },
      onHeaders: (statusCode, headers, resume, statusText) => {
        if (statusCode < 200) return true
        const failure: AttemptFailure = { kind: 'status', status: statusCode }
        if (statusCode >= 500 && this.#mayRetry(failure)) {
          // Drain and drop this answer; the next instance is asked once it is read.
          discarding = failure
          return true
        }
        report(statusCode >= 500 ? 'status-5xx' : 'success')
        this.#isCommitted = true
        return this.#downstream.onHeaders?.(statusCode, headers, resume, statusText) ?? true
      },
      onData: (chunk) => discarding !== undefined ? true : this.#downstream.onData?.(chunk) ?? true,
      onComplete: (trailers) => {
        release()
        if (discarding !== undefined) {
          report('status-5xx')
          this.#retry(`status-${(discarding as { status: number }).status}`)
          return
        }
        this.#downstream.onComplete?.(trailers)
      },
      onError: (error) => {
        release()
        if (this.#isCommitted) {
          this.#downstream.onError?.(error)
          return
        }
        if (this.#isAborted || this.#body?.hasSourceFailed === true) {
          // The client left (or its upload broke): not the instance's fault, so nothing counts against it.
          this.#downstream.onError?.(error)
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
        const code = kind === 'timeout' ? ErrorCode.UPSTREAM_TIMEOUT : kind === 'connect-failure' ? ErrorCode.UPSTREAM_CONNECT : kind === 'reset' ? ErrorCode.UPSTREAM_RESET : ErrorCode.UPSTREAM_ERROR
        this.#fail(new ProxyError(code, `${backend.name} instance ${instance.key}: ${error.message}`, backend.name, { cause: error }))
      },
      onUpgrade: (statusCode, headers, socket) => {
        report('success')
        release()
        this.#isCommitted = true
        this.#downstream.onUpgrade?.(statusCode, headers, socket)
      },
      onBodySent: (chunk) => { this.#downstream.onBodySent?.(chunk) },
      onRequestSent: () => { this.#downstream.onRequestSent?.() },
      onResponseStarted: () => { this.#downstream.onResponseStarted?.() }
    }
    const options: Dispatcher.DispatchOptions = {
      ...this.#options,
      origin: instance.origin,
      body: this.#body !== undefined ? this.#body.forAttempt() : this.#options.body,
      headersTimeout: backend.options.timeouts.responseMs,
      // Like HAProxy's `timeout server`: the same limit bounds a stall in the middle of a body.
      bodyTimeout: backend.options.timeouts.responseMs
    }
    try {
      this.#dispatcher.agentFor(backend).dispatch(options, attemptHandler as unknown as Dispatcher.DispatchHandler)
    } catch (error) {
      attemptHandler.onError?.(error as Error)
    }
  }

  #mayRetry (failure: AttemptFailure): boolean {
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
    this.#downstream.onError?.(error)
  }
}
