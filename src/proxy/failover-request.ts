import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Instance } from '../discovery/instance-set.js'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Backend, Outcome } from '../upstream/backend.js'
import type { Split } from '../upstream/split.js'
import type { ClientGone } from './client-gone.js'
import { ReplayableBody } from './replayable-body.js'
import { judgeAttempt, mayLeaveMember, type AttemptResult, type Verdict } from './retry-policy.js'
import type { Clock, Timer } from '../util/clock.js'
import type { ConnectionWaits, WaitingAttempt } from './connection-waits.js'
import type { UploadSlots } from './upload-slots.js'

/** What the dispatcher knows of one proxied request; also read by the access log. */
export type ProxyContext = {
  readonly backend: Backend
  readonly method: string
  readonly hashKey: string | undefined
  /** The split that chose `backend`, and the request's sticky key for it: a connect failure may move on to another member. */
  readonly split: Split | undefined
  readonly splitKey: string | undefined
  readonly tried: Set<string>
  /** Fired when the client has gone: every layer the request reached lets it go. */
  readonly clientGone: ClientGone | undefined
  /**
   * The client's body: a stream (fastify parses none here), or the whole body
   * when it was received before an instance was asked (client.bufferBodyBytes).
   */
  readonly body: Readable | Buffer | undefined
  /** Longest pause while the client's body arrives (client.bodyIdleTimeout). */
  readonly bodyIdleTimeoutMs: number
  /** Slowest a streamed body may arrive, bytes per second over 10 s (client.minBodyRate; 0: no floor). */
  readonly minBodyRate: number
  /** The instance that answered (or was tried last). */
  instance: Instance | undefined
  /** The backend that instance belongs to: `backend` itself, a failover target, or another member of the split. */
  servedBy: Backend | undefined
  retries: number
  readonly retryReasons: string[]
  /** The status the answering instance sent, and how long it took to (ms). */
  upstreamStatus: number | undefined
  upstreamMs: number | undefined
}

export type ContextOptions = {
  readonly hashKey?: string | undefined
  readonly split?: Split | undefined
  readonly splitKey?: string | undefined
  readonly clientGone?: ClientGone | undefined
  readonly body?: Readable | Buffer | undefined
  readonly bodyIdleTimeoutMs?: number
  /** client.minBodyRate, bytes per second, for a streamed body (0: no floor). */
  readonly minBodyRate?: number
}

export function newProxyContext (backend: Backend, method: string, options: ContextOptions = {}): ProxyContext {
  return {
    backend,
    method,
    hashKey: options.hashKey,
    split: options.split,
    splitKey: options.splitKey,
    tried: new Set(),
    clientGone: options.clientGone,
    body: options.body,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs ?? 0,
    minBodyRate: options.minBodyRate ?? 0,
    instance: undefined,
    servedBy: undefined,
    retries: 0,
    retryReasons: [],
    upstreamStatus: undefined,
    upstreamMs: undefined
  }
}

/** The failover target that served a request, when not the backend's own discovery (another split member is not one). */
export function failoverOf (context: ProxyContext | undefined): Backend | undefined {
  const servedBy = context?.servedBy
  return servedBy === undefined || servedBy === context?.backend || context?.backend.failover.includes(servedBy) !== true ? undefined : servedBy
}

export type DispatcherEvents = {
  /** An attempt is about to go to `instance` (`attempt` counts from 1). */
  readonly picked?: (backend: string, instance: Instance, attempt: number) => void
  readonly retried?: (backend: string, reason: string) => void
  readonly attemptFinished?: (backend: string, instance: Instance, outcome: Outcome, durationMs: number) => void
}

/** Where an attempt is sent: the keep-alive pool for one instance under a backend's settings. */
export type PoolFor = (backend: Backend, origin: string) => Dispatcher

/** What every FailoverRequest of one UpstreamPools shares. */
export type FailoverDeps = {
  readonly poolFor: PoolFor
  readonly clock: Clock
  readonly events: DispatcherEvents
  readonly waits: ConnectionWaits
  /** Streamed bodies' share of each instance's connections. */
  readonly uploads: UploadSlots
}

/** A pool wait under this share of timeouts.response is left to undici's headersTimeout. */
const POOL_WAIT_SLACK = 0.02

/**
 * One client request, over as many attempts as the retry policy allows: each
 * attempt picks an instance (never one already tried), and each result goes
 * through judgeAttempt (retry-policy.ts), whose verdict this class carries out.
 */
export class FailoverRequest {
  readonly #deps: FailoverDeps
  readonly #context: ProxyContext
  readonly #options: Dispatcher.DispatchOptions
  readonly #downstream: Dispatcher.DispatchHandler
  readonly #body: ReplayableBody | undefined
  /** A body received whole before any instance was asked: every attempt sends it again. */
  readonly #wholeBody: Buffer | undefined
  #isCommitted = false
  #isAborted = false
  #isFinished = false
  #current: Attempt | undefined
  /** The backend whose chain attempts go to: the routed one, until a connect failure moves the request to another split member. */
  #member: Backend

  constructor (deps: FailoverDeps, context: ProxyContext, options: Dispatcher.DispatchOptions, downstream: Dispatcher.DispatchHandler) {
    this.#deps = deps
    this.#context = context
    this.#options = options
    this.#downstream = downstream
    this.#member = context.backend
    const body = context.body ?? options.body
    this.#body = body instanceof Readable ? new ReplayableBody(body, { idleTimeoutMs: context.bodyIdleTimeoutMs, minBytesPerSecond: context.minBodyRate }, deps.clock) : undefined
    this.#wholeBody = Buffer.isBuffer(body) ? body : undefined
  }

  get downstream (): Dispatcher.DispatchHandler { return this.#downstream }
  get clock (): Clock { return this.#deps.clock }
  get waits (): ConnectionWaits { return this.#deps.waits }
  get context (): ProxyContext { return this.#context }
  get isCommitted (): boolean { return this.#isCommitted }

  start (): void {
    // The downstream handler's abort reaches whichever attempt is running.
    this.#downstream.onConnect?.((error?: Error) => { this.#abandon(error ?? new ProxyError(ErrorCode.CLIENT_GONE, 'request aborted')) })
    const clientGone = this.#context.clientGone
    if (clientGone !== undefined) {
      if (clientGone.isGone) {
        this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left before the request was sent'))
        return
      }
      clientGone.on(() => { this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left')) })
    }
    this.#next()
  }

  /** The attempt's verdict, for a result undici reported (not for our own give-ups). */
  judge (result: AttemptResult): Verdict {
    if (this.#body?.hasSourceFailed === true) {
      // The client's upload broke, stalled or was malformed: not the instance's fault.
      return { outcome: undefined, retryable: false, code: this.#body.failure?.code }
    }
    return judgeAttempt(result, {
      method: this.#context.method,
      retries: this.#context.retries,
      policy: this.#context.backend.options.retry,
      canReplayBody: !this.#isAborted && (this.#body?.canReplay ?? true)
    })
  }

  /** The instance's status line came and it goes to the client. */
  commit (attempt: Attempt, statusCode: number): void {
    this.#isCommitted = true
    this.#context.upstreamStatus = statusCode
    this.#context.upstreamMs = attempt.elapsedMs
  }

  /** Try another instance, for `reason`. */
  retry (reason: string): void {
    this.#context.retries++
    this.#context.retryReasons.push(reason)
    this.#deps.events.retried?.(this.#context.backend.metricLabel, reason)
    this.#next(mayLeaveMember(reason))
  }

  complete (trailers: string[] | null): void {
    if (this.#isFinished) return
    this.#isFinished = true
    this.#downstream.onComplete?.(trailers)
  }

  upgraded (statusCode: number, headers: Buffer[] | string[] | null, socket: unknown): void {
    this.#isCommitted = true
    this.#isFinished = true
    this.#downstream.onUpgrade?.(statusCode, headers, socket as never)
  }

  fail (error: Error): void {
    if (this.#isFinished) return
    this.#isFinished = true
    this.#downstream.onError?.(error)
  }

  report (attempt: Attempt, outcome: Outcome): void {
    attempt.backend.report(attempt.instance, outcome)
    this.#deps.events.attemptFinished?.(attempt.backend.metricLabel, attempt.instance, outcome, attempt.elapsedMs)
  }

  /**
   * The client has gone (or the downstream gave up): let go of the attempt
   * wherever it is (pool queue, upload, response), count nothing against the
   * instance, and finish once.
   */
  #abandon (error: Error): void {
    if (this.#isAborted || this.#isFinished) return
    this.#isAborted = true
    this.#current?.letGo(error)
    this.#body?.abandon()
    this.fail(error)
  }

  #next (canLeaveMember = false): void {
    const { tried, hashKey, split } = this.#context
    const head = this.#context.backend
    // The head of a failover chain while it has an instance not yet tried, else the next datacenter's.
    let backend = this.#member.serving(tried)
    let instance = backend.pick(tried, hashKey)
    const other = instance === undefined && canLeaveMember ? split?.chooseUntried(this.#context.splitKey, tried) : undefined
    if (other !== undefined) {
      this.#member = other
      backend = other.serving(tried)
      instance = backend.pick(tried, hashKey)
    }
    if (instance === undefined) {
      const hadAttempts = tried.size > 0
      this.fail(new ProxyError(hadAttempts ? ErrorCode.UPSTREAM_CONNECT : ErrorCode.NO_HEALTHY_INSTANCE,
        hadAttempts ? `no instance of ${head.name} left to try after ${tried.size} attempt(s)` : `no usable instance of ${head.name}`, head.name))
      return
    }
    tried.add(instance.key)
    this.#context.instance = instance
    this.#context.servedBy = backend
    this.#deps.events.picked?.(backend.metricLabel, instance, tried.size)
    const attempt = new Attempt(this, backend, instance, backend.options.timeouts.responseMs)
    this.#current = attempt
    // Copied key by key: a spread object given more keys costs microseconds on Node 20 (see headers.ts).
    const options: Record<string, unknown> = {}
    for (const key in this.#options) options[key] = this.#options[key as keyof Dispatcher.DispatchOptions]
    const tls = backend.options.tls
    options.origin = tls === undefined ? instance.origin : instance.tlsOrigin
    // undici takes the SNI (and the name it verifies) from the Host header unless told: the instance's name is serverName.
    if (tls !== undefined) options.servername = tls.serverName
    options.headersTimeout = backend.options.timeouts.responseMs
    // Like HAProxy's `timeout server`: the same limit bounds a stall in the middle of a body.
    options.bodyTimeout = backend.options.timeouts.responseMs
    const body = this.#body
    if (body === undefined) {
      options.body = this.#wholeBody ?? this.#options.body
      this.#send(backend, attempt, options)
      return
    }
    // A streamed body takes one of the instance's upload slots first (upload-slots.ts says why).
    const send = (): void => {
      options.body = body.forAttempt()
      this.#send(backend, attempt, options)
    }
    if (attempt.takeUploadSlot(this.#deps.uploads, options.origin as string, send)) send()
  }

  #send (backend: Backend, attempt: Attempt, options: Record<string, unknown>): void {
    try {
      this.#deps.poolFor(backend, options.origin as string).dispatch(options as unknown as Dispatcher.DispatchOptions, attempt)
    } catch (error) {
      attempt.onError(error as Error)
      return
    }
    attempt.dispatched()
  }
}

/**
 * One attempt on one instance, as an undici handler. It keeps the instance
 * busy until its response is done, bounds the wait for a pooled connection
 * and then for headers with one budget (timeouts.response), and hands every
 * result to its request's judge. Once let go (the client left, the budget
 * ran out in the pool queue), undici's later calls are ignored: a request
 * undici cannot unqueue is aborted the moment it gets a connection.
 */
class Attempt implements Dispatcher.DispatchHandler, WaitingAttempt {
  /** The backend of the chain the instance belongs to: its health counts the attempt. */
  readonly backend: Backend
  readonly instance: Instance
  readonly #request: FailoverRequest
  readonly #responseMs: number
  readonly #startedMs: number
  #waitedMs = 0
  #isDetached = false
  #isReleased = false
  #isReported = false
  #abort: ((error?: Error) => void) | undefined
  #timer: Timer | undefined
  /** A 5xx being drained before the next instance is asked. */
  #discarding: Verdict & { status: number } | undefined
  /** Gives back the upload slot this attempt's streamed body holds. */
  #releaseSlot: (() => void) | undefined
  /** Leaves the queue for an upload slot, while waiting in it. */
  #withdrawWait: (() => void) | undefined

  constructor (request: FailoverRequest, backend: Backend, instance: Instance, responseMs: number) {
    this.#request = request
    this.backend = backend
    this.instance = instance
    this.#responseMs = responseMs
    this.#startedMs = request.clock.now()
    backend.begin(instance)
  }

  /**
   * Called once undici's dispatch has returned. A connection handed over
   * inside dispatch (onConnect came already) needs no bound. Otherwise the
   * request waits in the pool, or for a new connection, and timeouts.response
   * covers that wait too: ConnectionWaits looks again a millisecond later
   * (nearly every attempt has its connection by then) and calls boundWait.
   */
  dispatched (): void {
    if (this.#isDetached || this.#abort !== undefined) return
    this.#request.waits.add(this)
  }

  /** Still no connection: what is left of timeouts.response bounds the wait. */
  boundWait (): void {
    if (this.#isDetached || this.#abort !== undefined) return
    const backend = this.backend
    const responseMs = this.#responseMs
    this.#timer = this.#request.clock.setTimeout(() => {
      if (this.#isDetached || this.#abort !== undefined) return
      this.#detach()
      this.#request.fail(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${this.instance.key}: no connection free within ${responseMs} ms (maxConnectionsPerInstance ${backend.options.maxConnectionsPerInstance})`, backend.name))
    }, Math.max(1, responseMs - this.elapsedMs))
  }

  get elapsedMs (): number { return this.#request.clock.now() - this.#startedMs }

  /**
   * A streamed body's slot at the instance: true when taken now; otherwise
   * `send` runs once one frees, and what is left of timeouts.response bounds
   * the wait (504), as it bounds a wait in the pool.
   */
  takeUploadSlot (slots: UploadSlots, origin: string, send: () => void): boolean {
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
    this.#timer = this.#request.clock.setTimeout(() => {
      if (this.#isDetached) return
      this.#detach()
      this.#request.fail(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${this.instance.key}: no upload slot free within ${this.#responseMs} ms (streamed bodies hold at most ${cap} of maxConnectionsPerInstance ${backend.options.maxConnectionsPerInstance})`, backend.name))
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
  }

  /** undici core calls it once the whole request is written (not in its types). */
  onRequestSent (): void {
    // The body is all sent: the connection is an ordinary request's now.
    this.#giveSlot()
    if (this.#isDetached) return
    // What is left of timeouts.response after the pool wait bounds the wait for headers.
    // Without a noticeable wait, undici's own headersTimeout (the whole budget) does it: no timer.
    if (this.#waitedMs > this.#responseMs * POOL_WAIT_SLACK) {
      const backend = this.backend
      this.#timer = this.#request.clock.setTimeout(() => {
        this.#abort?.(new ProxyError(ErrorCode.UPSTREAM_TIMEOUT, `${backend.name} instance ${this.instance.key}: no response headers within ${this.#responseMs} ms`, backend.name))
      }, Math.max(1, this.#responseMs - this.#waitedMs))
    }
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#isDetached) return false
    // 1xx (103 Early Hints): not the answer.
    if (statusCode < 200) return true
    this.#timer?.cancel()
    const verdict = this.#request.judge({ kind: 'status', status: statusCode })
    if (verdict.retryable) {
      // Drain and drop this answer; the next instance is asked once it is read.
      this.#discarding = { ...verdict, status: statusCode }
      return true
    }
    this.#report(verdict)
    this.#request.commit(this, statusCode)
    return this.#request.downstream.onHeaders?.(statusCode, headers, resume, statusText) ?? true
  }

  onData (chunk: Buffer): boolean {
    if (this.#isDetached) return false
    return this.#discarding !== undefined ? true : this.#request.downstream.onData?.(chunk) ?? true
  }

  onComplete (trailers: string[] | null): void {
    if (this.#isDetached) return
    this.#detach()
    const discarded = this.#discarding
    if (discarded !== undefined) {
      this.#report(discarded)
      this.#request.retry(`status-${discarded.status}`)
      return
    }
    this.#request.complete(trailers)
  }

  onError (error: Error): void {
    if (this.#isDetached) return
    this.#detach()
    if (this.#request.isCommitted) {
      this.#request.fail(error)
      return
    }
    const verdict = this.#discarding ?? this.#request.judge({ kind: 'error', error })
    this.#report(verdict)
    if (verdict.retryable && this.#discarding === undefined) {
      this.#request.retry(verdict.outcome ?? 'error')
      return
    }
    if (error instanceof ProxyError && error.code === verdict.code) {
      // Our own verdict (a timer, the client's body), already worded.
      this.#request.fail(error)
      return
    }
    const backend = this.backend
    this.#request.fail(new ProxyError(verdict.code ?? ErrorCode.UPSTREAM_ERROR, `${backend.name} instance ${this.instance.key}: ${error.message}`, backend.name, { cause: error }))
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: unknown): void {
    if (this.#isDetached) {
      (socket as { destroy?: () => void }).destroy?.()
      return
    }
    this.#report({ outcome: 'success', retryable: false, code: undefined })
    this.#detach()
    this.#request.upgraded(statusCode, headers, socket)
  }

  onBodySent (chunkSize: number, totalBytesSent: number): void {
    if (!this.#isDetached) this.#request.downstream.onBodySent?.(chunkSize, totalBytesSent)
  }

  onResponseStarted (): void {
    if (!this.#isDetached) this.#request.downstream.onResponseStarted?.()
  }

  #report (verdict: Verdict): void {
    if (this.#isReported || verdict.outcome === undefined) return
    this.#isReported = true
    this.#request.report(this, verdict.outcome)
  }

  /** The instance stays busy until its response body is done, or the attempt is let go. */
  #detach (): void {
    this.#isDetached = true
    this.#timer?.cancel()
    this.#withdrawWait?.()
    this.#withdrawWait = undefined
    this.#giveSlot()
    if (this.#isReleased) return
    this.#isReleased = true
    this.backend.end(this.instance)
  }
}
