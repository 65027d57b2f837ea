import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type SpanContext } from '@opentelemetry/api'
import type { IncomingHttpHeaders } from 'node:http'
import type { Instance } from '../discovery/instance-set.js'
import type { RouteDecision } from '../routing/router.js'
import { RecordedSpan, type SpanOrigin } from './recorded-span.js'

/** What the end of a request tells its span: the request object's facts (request-end.ts). */
export type TracedEnd = {
  readonly status: number
  readonly path: string | undefined
  readonly host: string | undefined
  readonly clientIp: string
  readonly backend: string | undefined
  readonly split: string | undefined
  readonly failoverTarget: string | undefined
  readonly retries: number
  /** The error's stable code (SG_ERR_…), when srvgate gave up on the request. */
  readonly errorCode: string | undefined
  readonly isUpgrade: boolean
}

/** What a trace needs of its process: ids, the clock, where ended spans go. */
export type TraceDeps = {
  readonly origin: SpanOrigin
  readonly now: () => number
  readonly spanId: () => string
  readonly finished: (span: RecordedSpan) => void
}

/**
 * Values a client chooses (the path, the Host) are cut to this many
 * characters in span attributes (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT's role):
 * a sampled flood of 16 KB paths must not make every span 16 KB.
 */
const MAX_ATTRIBUTE_LENGTH = 1024

/** A wait for a pooled connection at least this long is an event on the attempt's span. */
const POOL_WAIT_EVENT_MS = 1

/** An attempt's CLIENT span, as the request object holds it. */
export type AttemptSpan = RecordedSpan

/**
 * One request's trace: its SERVER span (from the request's arrival, named
 * `METHOD frontend route` once routed, ended with the answer) and a CLIENT
 * span per attempt, siblings under it, each the parent the instance is told
 * of in `traceparent`. Not sampled: no span at all, only the ids the
 * instance is told of (the trace's, and the SERVER span's id it would have
 * had) with the flag saying so. An attempt still open when the request ends
 * (let go: the client left, the pool wait ran out) ends with it.
 */
export class RequestTrace {
  readonly #deps: TraceDeps
  readonly #method: string
  readonly #context: SpanContext
  readonly #server: RecordedSpan | undefined
  #route: string | undefined
  #frontend: string | undefined
  #env: string | undefined
  #open: RecordedSpan[] | undefined

  constructor (deps: TraceDeps, method: string, context: SpanContext, parent: SpanContext | undefined, startMs: number) {
    this.#deps = deps
    this.#method = method
    this.#context = context
    this.#server = (context.traceFlags & TraceFlags.SAMPLED) === 0 ? undefined : new RecordedSpan(deps.origin, method, SpanKind.SERVER, context, parent, startMs, {})
  }

  get traceId (): string { return this.#context.traceId }
  get spanId (): string { return this.#context.spanId }
  get isRecording (): boolean { return this.#server !== undefined }

  /** Routing chose a frontend: the span's name and route attributes. */
  routed (decision: RouteDecision): void {
    this.#frontend = decision.frontend.name
    this.#route = decision.frontend.match.pathPrefix ?? '/'
    this.#env = decision.env
  }

  /**
   * An attempt on `instance` begins: its CLIENT span (sampled requests), and
   * the headers that carry the trace to the instance (`headers` copied,
   * `traceparent` and `tracestate` srvgate's).
   */
  attempt (backend: string, instance: Instance, number: number, headers: IncomingHttpHeaders): { readonly span: AttemptSpan | undefined, readonly headers: IncomingHttpHeaders } {
    if (this.#server === undefined) return { span: undefined, headers: withTraceContext(headers, this.#context) }
    const context: SpanContext = { traceId: this.#context.traceId, spanId: this.#deps.spanId(), traceFlags: this.#context.traceFlags, traceState: this.#context.traceState }
    const attributes: Attributes = { 'server.address': instance.address, 'server.port': instance.port, 'srvgate.backend': backend, 'srvgate.attempt': number }
    const span = new RecordedSpan(this.#deps.origin, `${this.#method} ${backend}`, SpanKind.CLIENT, context, this.#context, this.#deps.now(), attributes)
    ;(this.#open ??= []).push(span)
    return { span, headers: withTraceContext(headers, context) }
  }

  /** An attempt's result as the retry policy judged it: `outcome` (success, status-5xx, connect-failure, timeout…), the status it got. */
  attemptEnded (span: AttemptSpan, outcome: string, status: number | undefined, isRetried: boolean): void {
    if (!this.#close(span)) return
    const attributes = span.attributes
    attributes['srvgate.outcome'] = outcome
    if (status !== undefined) attributes['http.response.status_code'] = status
    if (outcome !== 'success') {
      attributes['error.type'] = status !== undefined ? String(status) : outcome
      span.status = { code: SpanStatusCode.ERROR, message: isRetried ? `${outcome}: retried` : outcome }
    }
    this.#finish(span)
  }

  /**
   * The pool gave the attempt a connection after `waitedMs` (a new
   * connection's connect included): an event on its span when that took 1 ms
   * or more; a pooled connection handed over at once, the usual case, is no
   * event.
   */
  connected (span: AttemptSpan, waitedMs: number): void {
    if (waitedMs >= POOL_WAIT_EVENT_MS) span.addEvent('pool.wait', this.#deps.now(), { 'srvgate.pool.wait_ms': Math.round(waitedMs * 100) / 100 })
  }

  /** The request was answered (or abandoned): the SERVER span's name, attributes and end; open attempts end too. */
  end (facts: TracedEnd): void {
    for (const span of this.#open ?? []) {
      span.attributes['srvgate.outcome'] = 'abandoned'
      this.#finish(span)
    }
    this.#open = undefined
    const server = this.#server
    if (server === undefined || server.ended) return
    const method = this.#method
    server.name = this.#frontend === undefined ? method : `${method} ${this.#frontend} ${this.#route ?? '/'}`
    const attributes = server.attributes
    attributes['http.request.method'] = method
    attributes['http.response.status_code'] = facts.status
    attributes['client.address'] = facts.clientIp
    attributes['srvgate.retries'] = facts.retries
    setDefined(attributes, 'url.path', capped(facts.path))
    const host = hostAndPort(capped(facts.host))
    setDefined(attributes, 'server.address', host?.address)
    if (host?.port !== undefined) attributes['server.port'] = host.port
    setDefined(attributes, 'http.route', this.#frontend === undefined ? undefined : this.#route)
    setDefined(attributes, 'srvgate.frontend', this.#frontend)
    setDefined(attributes, 'srvgate.backend', facts.backend)
    setDefined(attributes, 'srvgate.env', this.#env)
    setDefined(attributes, 'srvgate.split', facts.split)
    setDefined(attributes, 'srvgate.failover.target', facts.failoverTarget)
    if (facts.isUpgrade) attributes['srvgate.upgrade'] = 'websocket'
    // HTTP semantic conventions: a server span is an error for 5xx only, not for 4xx (the client's
    // doing, srvgate's own 404 and 429 included); error.type is srvgate's code when it has one.
    const errorType = facts.status >= 500 ? facts.errorCode ?? String(facts.status) : undefined
    if (errorType !== undefined) {
      attributes['error.type'] = errorType
      server.status = { code: SpanStatusCode.ERROR }
    }
    this.#finish(server)
  }

  #finish (span: RecordedSpan): void {
    if (span.end(this.#deps.now())) this.#deps.finished(span)
  }

  /** True when `span` was open (it is not any more). */
  #close (span: RecordedSpan): boolean {
    const open = this.#open
    const index = open?.indexOf(span) ?? -1
    if (open === undefined || index === -1) return false
    open.splice(index, 1)
    return true
  }
}

/**
 * The forwarded headers with the W3C trace context of `context` in place of
 * the client's (traceparent version 00, its flags; tracestate as the trace
 * carries it): a copy, without `delete` (which turns a header object into a
 * slow dictionary for the rest of its trip).
 */
function withTraceContext (headers: IncomingHttpHeaders, context: SpanContext): IncomingHttpHeaders {
  const forwarded: IncomingHttpHeaders = {}
  for (const name in headers) if (name !== 'traceparent' && name !== 'tracestate') forwarded[name] = headers[name]
  forwarded.traceparent = `00-${context.traceId}-${context.spanId}-0${(context.traceFlags & TraceFlags.SAMPLED).toString(16)}`
  const state = context.traceState?.serialize()
  if (state !== undefined && state !== '') forwarded.tracestate = state
  return forwarded
}

/** The Host header as server.address and server.port (semantic conventions: the port apart; `[::1]:8080` → ::1, 8080). */
function hostAndPort (host: string | undefined): { readonly address: string, readonly port: number | undefined } | undefined {
  if (host === undefined || host === '') return undefined
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host)
  if (match === null) return { address: host, port: undefined }
  const address = (match[1] as string).replace(/^\[(.*)\]$/, '$1')
  return { address, port: match[2] === undefined ? undefined : Number(match[2]) }
}

function capped (value: string | undefined): string | undefined {
  return value === undefined || value.length <= MAX_ATTRIBUTE_LENGTH ? value : value.slice(0, MAX_ATTRIBUTE_LENGTH)
}

function setDefined (attributes: Attributes, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') attributes[key] = value
}
