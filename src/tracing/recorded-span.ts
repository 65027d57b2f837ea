import { SpanStatusCode, type Attributes, type HrTime, type Link, type SpanContext, type SpanKind, type SpanStatus } from '@opentelemetry/api'
import type { InstrumentationScope } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace'

/** What every span of one process shares: its resource and scope, and where monotonic time sits on the wall clock. */
export type SpanOrigin = {
  readonly resource: Resource
  readonly scope: InstrumentationScope
  /** Wall-clock ms at monotonic 0 (clock.wallNow() − clock.now() at start): spans keep sub-millisecond times. */
  readonly wallAtZeroMs: number
}

const NO_LINKS: Link[] = []

/**
 * One recorded span, as the OTLP exporters read it (the SDK's ReadableSpan):
 * a plain object the request fills in and ends, instead of the SDK's Span
 * (its attribute sanitising, limits, span processors' onStart, self-metrics
 * and time conversions on every call cost a traced request tens of µs).
 * Only sampled requests make one; attributes are srvgate's own, of known
 * types and count.
 */
export class RecordedSpan implements ReadableSpan {
  name: string
  readonly kind: SpanKind
  readonly parentSpanContext: SpanContext | undefined
  readonly startTime: HrTime
  endTime: HrTime = [0, 0]
  duration: HrTime = [0, 0]
  ended = false
  status: SpanStatus = { code: SpanStatusCode.UNSET }
  readonly attributes: Attributes
  readonly links = NO_LINKS
  events: TimedEvent[] = []
  readonly resource: Resource
  readonly instrumentationScope: InstrumentationScope
  readonly droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  readonly #context: SpanContext
  readonly #startMs: number
  readonly #origin: SpanOrigin

  constructor (origin: SpanOrigin, name: string, kind: SpanKind, context: SpanContext, parent: SpanContext | undefined, startMs: number, attributes: Attributes) {
    this.#origin = origin
    this.name = name
    this.kind = kind
    this.#context = context
    this.parentSpanContext = parent
    this.#startMs = startMs
    this.startTime = hrTime(origin.wallAtZeroMs + startMs)
    this.attributes = attributes
    this.resource = origin.resource
    this.instrumentationScope = origin.scope
  }

  spanContext (): SpanContext { return this.#context }

  addEvent (name: string, atMs: number, attributes: Attributes): void {
    this.events.push({ name, time: hrTime(this.#origin.wallAtZeroMs + atMs), attributes })
  }

  /** Ended at monotonic `atMs`; false when it had ended already. */
  end (atMs: number): boolean {
    if (this.ended) return false
    this.ended = true
    this.endTime = hrTime(this.#origin.wallAtZeroMs + atMs)
    this.duration = hrTime(Math.max(0, atMs - this.#startMs))
    return true
  }
}

/** Milliseconds (fractional) as OpenTelemetry's [seconds, nanoseconds]. */
function hrTime (ms: number): HrTime {
  const seconds = Math.floor(ms / 1000)
  const nanos = Math.round((ms - seconds * 1000) * 1e6)
  return nanos >= 1e9 ? [seconds + 1, nanos - 1e9] : [seconds, nanos]
}
