import { SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api'
import type { IncomingHttpHeaders } from 'node:http'
import type { Instance } from '../discovery/instance-set.js'
import type { RouteDecision } from '../routing/router.js'

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

/** A wait for a pooled connection at least this long is an event on the attempt's span. */
const POOL_WAIT_EVENT_MS = 1

/** An attempt's CLIENT span, as the request object holds it. */
export type AttemptSpan = Span


/**
 * One request's spans: its SERVER span (started when the request arrived,
 * named `METHOD frontend route` once routed, ended with the answer) and a
 * CLIENT span per attempt, siblings under it, each the parent the instance
 * is told of in `traceparent`. An attempt still open when the request ends
 * (let go: the client left, the pool wait ran out) ends with it.
 */
export class RequestTrace {
  readonly #tracer: Tracer
  readonly #server: Span
  /** Where the request's trace came from (the client's context, or the root); the SERVER span's own made when an attempt needs it. */
  readonly #parent: Context
  #context: Context | undefined
  readonly #method: string
  #route: string | undefined
  #frontend: string | undefined
  #env: string | undefined
  #open: Span[] | undefined

  constructor (tracer: Tracer, method: string, server: Span, parent: Context) {
    this.#method = method
    this.#tracer = tracer
    this.#server = server
    this.#parent = parent
  }

  get traceId (): string { return this.#server.spanContext().traceId }
  get spanId (): string { return this.#server.spanContext().spanId }
  get isRecording (): boolean { return this.#server.isRecording() }

  /** Routing chose a frontend: the span's name and route attributes. */
  routed (decision: RouteDecision): void {
    this.#frontend = decision.frontend.name
    this.#route = decision.frontend.match.pathPrefix ?? '/'
    this.#env = decision.env
  }

  /**
   * An attempt on `instance` begins: its CLIENT span, and the headers that
   * carry it to the instance (`headers` copied, `traceparent` and
   * `tracestate` replaced).
   */
  attempt (backend: string, instance: Instance, number: number, headers: IncomingHttpHeaders): { readonly span: Span | undefined, readonly headers: IncomingHttpHeaders } {
    // Not recorded: no CLIENT span (nothing would keep it); the instance is told of the trace and
    // the decision, under the SERVER span's id.
    const span = this.#server.isRecording()
      ? this.#tracer.startSpan(`${this.#method} ${backend}`, { kind: SpanKind.CLIENT, attributes: { 'server.address': instance.address, 'server.port': instance.port, 'srvgate.backend': backend, 'srvgate.attempt': number } }, this.#context ??= trace.setSpan(this.#parent, this.#server))
      : undefined
    if (span !== undefined) (this.#open ??= []).push(span)
    return { span, headers: withTraceContext(headers, (span ?? this.#server).spanContext()) }
  }

  /** An attempt's result as the retry policy judged it: `outcome` (success, 5xx, connect-failure, timeout…), the status it got. */
  attemptEnded (span: Span, outcome: string, status: number | undefined, isRetried: boolean): void {
    if (!this.#close(span)) return
    if (span.isRecording()) {
      const attributes: Attributes = { 'srvgate.outcome': outcome }
      if (status !== undefined) attributes['http.response.status_code'] = status
      if (outcome !== 'success') {
        attributes['error.type'] = status !== undefined ? String(status) : outcome
        span.setStatus({ code: SpanStatusCode.ERROR, message: isRetried ? `${outcome}: retried` : outcome })
      }
      span.setAttributes(attributes)
    }
    span.end()
  }

  /**
   * The pool gave the attempt a connection after `waitedMs` (a new
   * connection's connect included): an event on its span when that took 1 ms
   * or more; a pooled connection handed over at once, the usual case, is no
   * event (each costs the span an object).
   */
  connected (span: Span, waitedMs: number): void {
    if (waitedMs >= POOL_WAIT_EVENT_MS && span.isRecording()) span.addEvent('pool.wait', { 'srvgate.pool.wait_ms': Math.round(waitedMs * 100) / 100 })
  }

  /** The request was answered (or abandoned): the SERVER span's name, attributes and end; open attempts end too. */
  end (facts: TracedEnd): void {
    const method = this.#method
    for (const span of this.#open ?? []) {
      span.setAttribute('srvgate.outcome', 'abandoned')
      span.end()
    }
    this.#open = undefined
    const server = this.#server
    if (!server.isRecording()) {
      server.end()
      return
    }
    server.updateName(this.#frontend === undefined ? method : `${method} ${this.#frontend} ${this.#route ?? '/'}`)
    const attributes: Attributes = {
      'http.request.method': method,
      'http.response.status_code': facts.status,
      'client.address': facts.clientIp,
      'srvgate.retries': facts.retries
    }
    setDefined(attributes, 'url.path', facts.path)
    setDefined(attributes, 'server.address', facts.host)
    setDefined(attributes, 'http.route', this.#frontend === undefined ? undefined : this.#route)
    setDefined(attributes, 'srvgate.frontend', this.#frontend)
    setDefined(attributes, 'srvgate.backend', facts.backend)
    setDefined(attributes, 'srvgate.env', this.#env)
    setDefined(attributes, 'srvgate.split', facts.split)
    setDefined(attributes, 'srvgate.failover.target', facts.failoverTarget)
    if (facts.isUpgrade) attributes['srvgate.upgrade'] = 'websocket'
    // HTTP semantic conventions: a server span is an error for 5xx (and for what srvgate gave up on), not for 4xx.
    const errorType = facts.errorCode ?? (facts.status >= 500 ? String(facts.status) : undefined)
    if (errorType !== undefined) {
      attributes['error.type'] = errorType
      server.setStatus({ code: SpanStatusCode.ERROR })
    }
    server.setAttributes(attributes)
    server.end()
  }

  /** True when `span` was open (it is not any more). */
  #close (span: Span): boolean {
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
 * carries it): a copy, written as the propagator would without its context
 * objects, and without `delete` (which turns a header object into a slow
 * dictionary for the rest of its trip).
 */
function withTraceContext (headers: IncomingHttpHeaders, context: SpanContext): IncomingHttpHeaders {
  const forwarded: IncomingHttpHeaders = {}
  for (const name in headers) if (name !== 'traceparent' && name !== 'tracestate') forwarded[name] = headers[name]
  forwarded.traceparent = `00-${context.traceId}-${context.spanId}-0${(context.traceFlags & TraceFlags.SAMPLED).toString(16)}`
  const state = context.traceState?.serialize()
  if (state !== undefined && state !== '') forwarded.tracestate = state
  return forwarded
}

function setDefined (attributes: Attributes, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') attributes[key] = value
}

