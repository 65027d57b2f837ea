import { Readable, type Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Instance } from '../discovery/instance-set.js'
import { ErrorCode, ProxyError, type GatewayError } from '../errors.js'
import type { RouteDecision } from '../routing/router.js'
import type { Backend } from '../upstream/backend.js'
import type { Split } from '../upstream/split.js'
import { Attempt, traceAttempt, type AttemptDeps, type AttemptReports, type DispatcherEvents } from './attempt.js'
import type { ClientGone } from './client-gone.js'
import { KEEP_BODY_BYTES, ReplayableBody } from './replayable-body.js'
import type { EndedRequest, Protocol } from './request-end.js'
import { healthOutcomeOf, judgeAttempt, mayLeaveMember, type AttemptResult, type Verdict } from './retry-policy.js'
import type { RoutingState } from './route-request.js'
import type { RequestTrace } from '../tracing/request-trace.js'

/** What every request forwarded over one UpstreamPools shares. */
export type ForwardDeps = AttemptDeps & {
  /** Where an attempt is sent: the keep-alive pool for one instance under a backend's settings. */
  readonly poolFor: (backend: Backend, origin: string) => { dispatch: (options: Dispatcher.DispatchOptions, handler: Attempt) => boolean }
  readonly events: DispatcherEvents
}

/** Where a routed request goes, and how its body arrives. */
export type ForwardFacts = {
  readonly hashKey?: string | undefined
  /** The split that chose the backend, and the request's sticky key for it: a connect failure may move on to another member. */
  readonly split?: Split | undefined
  readonly splitKey?: string | undefined
  /**
   * The client's body: a stream, or the whole body when it was received
   * before an instance was asked (client.bufferBodyBytes).
   */
  readonly body?: Readable | Buffer | undefined
  /** Longest pause while the client's body arrives (client.bodyIdleTimeout). */
  readonly bodyIdleTimeoutMs?: number
  /** client.minBodyRate, bytes per second, for a streamed body (0: no floor). */
  readonly minBodyRate?: number
}

/** The options of one attempt: undici takes `servername` though its types do not name it. */
type AttemptOptions = Dispatcher.DispatchOptions & { servername?: string }

/**
 * One client request, from routing to its access record, in the shape of
 * undici's RetryHandler: it owns the request's whole state (route, attempts,
 * retries, the instances tried and the one that answered, timings, bytes,
 * error) and wraps the downstream handler that writes the answer. Each
 * attempt is an undici handler of its own (attempt.ts) that only reports up
 * here; each result goes through judgeAttempt (retry-policy.ts), whose
 * verdict this class carries out: an instance never tried before, until the
 * policy says stop. Nothing in it knows fastify: the edges (plugin.ts,
 * upgrade.ts, the client's ServiceDispatcher) fill in what they know and end
 * it through RequestEnd.
 */
export class ProxyRequest implements AttemptReports, EndedRequest {
  // Who asked (filled in by the edge).
  requestId = ''
  clientIp = ''
  isPeerTrusted = false
  /** It came over the HTTPS listener (HTTP/2 or HTTP/1.1 on TLS). */
  isSecure = false
  protocol: Protocol | undefined = undefined
  upgrade: 'websocket' | undefined = undefined
  /** The routing state the request runs against, read once at its start: a reload never changes a request midway. */
  state: RoutingState | undefined = undefined
  /** Fired when the client has gone: every layer the request reached lets it go. */
  clientGone: ClientGone | undefined = undefined
  isInFlight = false
  /** Bytes of the process's body budget this request's body holds (0: none; given back when it ends). */
  bufferedBytes = 0
  /** Its spans, when tracing is on: each attempt's CLIENT span, and the traceparent the instance is sent. */
  trace: RequestTrace | undefined = undefined
  /** A gRPC call's deadline (its grpc-timeout, as a clock time): every attempt ends by then. */
  deadlineAtMs: number | undefined = undefined

  // Where it goes.
  decision: RouteDecision | undefined = undefined
  /** The backend routing chose (a split's member), as soon as it is known: refusals name it too. */
  backend: Backend | undefined = undefined
  split: Split | undefined = undefined

  // What happened.
  /** The instance that answered (or was tried last). */
  instance: Instance | undefined = undefined
  /** The backend that instance belongs to: `backend` itself, a failover target, or another member of the split. */
  servedBy: Backend | undefined = undefined
  retries = 0
  retryReasons: string[] | undefined = undefined
  /** The status the answering instance sent, and how long it took to (ms). */
  upstreamStatus: number | undefined = undefined
  upstreamMs: number | undefined = undefined
  /** The first error is the cause: later ones (the body's stream failing after a 400) are its consequences. */
  error: GatewayError | undefined = undefined
  /** Bytes of the answer's body sent to the client: the instance's (response-writer.ts), or srvgate's own (plugin.ts). */
  bytesOut = 0
  isEnded = false

  readonly method: string
  readonly startedMs: number | undefined
  #tried: Set<string> | undefined = undefined
  #hashKey: string | undefined = undefined
  #splitKey: string | undefined = undefined
  #bodyIdleTimeoutMs = 0
  #minBodyRate = 0
  #source: Readable | Buffer | undefined = undefined
  #isRouted = false
  // The failover machinery, set by forward().
  #deps: ForwardDeps | undefined = undefined
  #options: Dispatcher.DispatchOptions | undefined = undefined
  #downstream: Dispatcher.DispatchHandler | undefined = undefined
  #body: ReplayableBody | undefined = undefined
  /** A body received whole before any instance was asked: every attempt sends it again. */
  #wholeBody: Buffer | undefined = undefined
  #isCommitted = false
  #isAborted = false
  /** The downstream handler has been told how it ended. */
  #isSettled = false
  #current: Attempt | undefined = undefined
  /** The backend whose chain attempts go to: the routed one, until a connect failure moves the request to another split member. */
  #member: Backend | undefined = undefined
  /** The current attempt's retryable 5xx, drained before the next instance is asked. */
  #discarding: Verdict | undefined = undefined
  #discardedStatus = 0
  /** Why the last attempt retried failed ("address:port: message"): said when no instance is left. */
  #lastFailure: string | undefined = undefined
  /** The current attempt has been counted against (or for) its instance. */
  #isReported = false

  constructor (method: string, startedMs: number | undefined) {
    this.method = method
    this.startedMs = startedMs
  }

  get frontend (): string | undefined { return this.decision?.frontend.name }

  /** Bytes of the request body received from the client: whole before any attempt, or as far as attempts read it. */
  get bytesIn (): number { return this.#wholeBody?.length ?? this.#body?.bytesReceived ?? 0 }

  /** Routing chose a frontend (and, unless refused, a backend): called by routeRequest as soon as it knows. */
  decided (decision: RouteDecision, backend?: Backend, split?: Split): void {
    this.decision = decision
    this.trace?.routed(decision)
    this.backend = backend
    this.split = split
  }

  /** The request goes to `backend`: forward() may run. */
  routeTo (backend: Backend, facts: ForwardFacts): void {
    this.backend = backend
    this.split = facts.split
    this.#splitKey = facts.splitKey
    this.#hashKey = facts.hashKey
    this.#source = facts.body
    this.#bodyIdleTimeoutMs = facts.bodyIdleTimeoutMs ?? 0
    this.#minBodyRate = facts.minBodyRate ?? 0
    this.#isRouted = true
  }

  get isRouted (): boolean { return this.#isRouted }

  /** Instances already asked (by key): never asked again for this request. */
  get tried (): ReadonlySet<string> { return this.#tried ?? NONE_TRIED }

  /** The failover target that served the request, when not the backend's own discovery (another split member is not one). */
  get failover (): Backend | undefined {
    const servedBy = this.servedBy
    const backend = this.backend
    return servedBy === undefined || servedBy === backend || backend?.failover.includes(servedBy) !== true ? undefined : servedBy
  }

  /**
   * Send it (method, path, headers; the body given to routeTo wins over
   * `options.body`) over as many attempts as the retry policy allows, the
   * answer to `downstream`. Called once, by UpstreamPools.forward.
   */
  forward (deps: ForwardDeps, options: Dispatcher.DispatchOptions, downstream: Dispatcher.DispatchHandler): void {
    const backend = this.backend
    if (!this.#isRouted || backend === undefined) {
      downstream.onError?.(new ProxyError(ErrorCode.NO_HEALTHY_INSTANCE, 'forwarded before it was routed'))
      return
    }
    this.#deps = deps
    this.#options = options
    this.#downstream = downstream
    this.#member = backend
    this.#tried = new Set()
    const body = this.#source ?? options.body
    this.#body = body instanceof Readable ? new ReplayableBody(body, { idleTimeoutMs: this.#bodyIdleTimeoutMs, minBytesPerSecond: this.#minBodyRate, keepBytes: KEEP_BODY_BYTES }, deps.clock) : undefined
    this.#wholeBody = Buffer.isBuffer(body) ? body : undefined
    // The downstream handler's abort reaches whichever attempt is running.
    downstream.onConnect?.((error?: Error) => { this.#abandon(error ?? new ProxyError(ErrorCode.CLIENT_GONE, 'request aborted')) })
    const clientGone = this.clientGone
    if (clientGone !== undefined) {
      if (clientGone.isGone) {
        this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left before the request was sent'))
        return
      }
      clientGone.on(() => { this.#abandon(new ProxyError(ErrorCode.CLIENT_GONE, 'the client left')) })
    }
    this.#next(backend, deps, false)
  }

  // The attempt's reports (AttemptReports): one direction, attempt to request.

  onAttemptHeaders (attempt: Attempt, statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    const verdict = this.#judge({ kind: 'status', status: statusCode })
    if (verdict.retryable) {
      // Drain and drop this answer; the next instance is asked once it is read.
      this.#discarding = verdict
      this.#discardedStatus = statusCode
      return true
    }
    this.#report(attempt, verdict, statusCode)
    this.#isCommitted = true
    this.upstreamStatus = statusCode
    this.upstreamMs = attempt.elapsedMs
    return this.#downstream?.onHeaders?.(statusCode, headers, resume, statusText) ?? true
  }

  onAttemptData (chunk: Buffer): boolean {
    return this.#discarding !== undefined ? true : this.#downstream?.onData?.(chunk) ?? true
  }

  onAttemptComplete (attempt: Attempt, trailers: string[] | null): void {
    const discarded = this.#discarding
    if (discarded !== undefined) {
      this.#report(attempt, discarded, this.#discardedStatus)
      this.#retry(`status-${this.#discardedStatus}`)
      return
    }
    if (this.#isSettled) return
    this.#isSettled = true
    this.#downstream?.onComplete?.(trailers)
  }

  onAttemptError (attempt: Attempt, error: Error): void {
    if (this.#isCommitted) {
      this.#fail(error)
      return
    }
    const discarded = this.#discarding
    const verdict = discarded ?? this.#judge({ kind: 'error', error })
    this.#report(attempt, verdict)
    if (verdict.retryable && discarded === undefined) {
      this.#lastFailure = `${attempt.instance.key}: ${error.message}`
      this.#retry(verdict.outcome ?? 'error')
      return
    }
    if (error instanceof ProxyError && error.code === verdict.code) {
      // Our own verdict (a timer, the client's body), already worded.
      this.#fail(error)
      return
    }
    const backend = attempt.backend
    this.#fail(new ProxyError(verdict.code ?? ErrorCode.UPSTREAM_ERROR, `${backend.name} instance ${attempt.instance.key}: ${error.message}`, backend.name, { cause: error }))
  }

  onAttemptWaitExpired (_attempt: Attempt, error: ProxyError): void {
    this.#fail(error)
  }

  onAttemptUpgrade (attempt: Attempt, statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.#report(attempt, UPGRADED, statusCode)
    this.#isCommitted = true
    this.#isSettled = true
    this.#downstream?.onUpgrade?.(statusCode, headers, socket)
  }

  onAttemptBodySent (chunkSize: number, totalBytesSent: number): void {
    this.#downstream?.onBodySent?.(chunkSize, totalBytesSent)
  }

  onAttemptConnected (attempt: Attempt, waitedMs: number): void {
    if (attempt.span !== undefined) this.trace?.connected(attempt.span, waitedMs)
  }

  onAttemptResponseStarted (): void {
    this.#downstream?.onResponseStarted?.()
  }

  /** The attempt's verdict, for a result undici reported (not for our own give-ups). */
  #judge (result: AttemptResult): Verdict {
    if (this.#body?.hasSourceFailed === true) {
      // The client's upload broke, stalled or was malformed: not the instance's fault.
      return { outcome: undefined, retryable: false, code: this.#body.failure?.code }
    }
    const canReplayBody = !this.#isAborted && (this.#body?.canReplay ?? true)
    return judgeAttempt(result, { method: this.method, retries: this.retries, policy: (this.backend as Backend).options.retry, canReplayBody })
  }

  #report (attempt: Attempt, verdict: Verdict, status?: number): void {
    if (this.#isReported || verdict.outcome === undefined) return
    this.#isReported = true
    const span = attempt.span
    if (span !== undefined) this.trace?.attemptEnded(span, verdict.outcome, status, verdict.retryable)
    const outcome = healthOutcomeOf(verdict.outcome)
    attempt.backend.report(attempt.instance, outcome)
    this.#deps?.events.attemptFinished?.(attempt.backend.metricLabel, attempt.instance, outcome, attempt.elapsedMs)
  }

  /** Try another instance, for `reason`. */
  #retry (reason: string): void {
    this.retries++
    ;(this.retryReasons ??= []).push(reason)
    const deps = this.#deps as ForwardDeps
    deps.events.retried?.((this.backend as Backend).metricLabel, reason)
    this.#next(this.#member as Backend, deps, mayLeaveMember(reason))
  }

  #fail (error: Error): void {
    if (this.#isSettled) return
    this.#isSettled = true
    // Ours are worded for the record; the downstream words anything else (and its first error wins there too).
    if (error instanceof ProxyError) this.error ??= error
    this.#downstream?.onError?.(error)
  }

  /**
   * The client has gone (or the downstream gave up): let go of the attempt
   * wherever it is (pool queue, upload, response), count nothing against the
   * instance, and finish once.
   */
  #abandon (error: Error): void {
    if (this.#isAborted || this.#isSettled) return
    this.#isAborted = true
    this.#current?.letGo(error)
    this.#body?.abandon()
    this.#fail(error)
  }

  #next (member: Backend, deps: ForwardDeps, canLeaveMember: boolean): void {
    const tried = this.#tried as Set<string>
    const head = this.backend as Backend
    // The head of a failover chain while it has an instance not yet tried, else the next datacenter's.
    let backend = member.serving(tried)
    let instance = backend.pick(tried, this.#hashKey)
    const other = instance === undefined && canLeaveMember ? this.split?.chooseUntried(this.#splitKey, tried) : undefined
    if (other !== undefined) {
      this.#member = other
      backend = other.serving(tried)
      instance = backend.pick(tried, this.#hashKey)
    }
    if (instance === undefined) {
      const hadAttempts = tried.size > 0
      this.#fail(new ProxyError(hadAttempts ? ErrorCode.UPSTREAM_CONNECT : ErrorCode.NO_HEALTHY_INSTANCE,
        hadAttempts ? `no instance of ${head.name} left to try after ${tried.size} attempt(s)${this.#lastFailure === undefined ? '' : `; the last, ${this.#lastFailure}`}` : `no usable instance of ${head.name}`, head.name))
      return
    }
    tried.add(instance.key)
    this.instance = instance
    this.servedBy = backend
    this.#discarding = undefined
    this.#isReported = false
    deps.events.picked?.(backend.metricLabel, instance, tried.size)
    const attempt = new Attempt(this, deps, backend, instance, this.deadlineAtMs)
    this.#current = attempt
    // Object.assign, not a spread: a spread object given more keys costs microseconds on Node 20 (see headers.ts).
    const options: AttemptOptions = Object.assign({}, this.#options)
    const tls = backend.options.tls
    const origin = instanceOrigin(backend, instance)
    options.origin = origin
    // undici takes the SNI (and the name it verifies) from the Host header unless told: the instance's name is serverName.
    if (tls !== undefined) options.servername = tls.serverName
    options.headersTimeout = backend.options.timeouts.responseMs
    // Like HAProxy's `timeout server`: the same limit bounds a stall in the middle of a body.
    options.bodyTimeout = backend.options.timeouts.responseMs
    if (this.trace !== undefined) traceAttempt(this.trace, attempt, tried.size, options)
    const body = this.#body
    if (body === undefined) {
      if (this.#wholeBody !== undefined) options.body = this.#wholeBody
      this.#send(deps, backend, attempt, options)
      return
    }
    // A streamed body takes one of the instance's upload slots first (upload-slots.ts says why).
    const send = (): void => {
      options.body = body.forAttempt()
      this.#send(deps, backend, attempt, options)
    }
    if (attempt.takeUploadSlot(origin, send)) send()
  }

  #send (deps: ForwardDeps, backend: Backend, attempt: Attempt, options: AttemptOptions): void {
    try {
      deps.poolFor(backend, instanceOrigin(backend, attempt.instance)).dispatch(options, attempt)
      attempt.dispatched()
    } catch (error) {
      attempt.onError(error as Error)
    }
  }
}

/** The origin an instance is asked at under a backend's settings (TLS or not). */
const instanceOrigin = (backend: Backend, instance: Instance): string => backend.options.tls === undefined ? instance.origin : instance.tlsOrigin

const NONE_TRIED: ReadonlySet<string> = new Set()

/** An upgrade the instance accepted: it answered. */
const UPGRADED: Verdict = { outcome: 'success', retryable: false, code: undefined }
