import { ROOT_CONTEXT, SpanKind, TraceFlags, isSpanContextValid, trace, type SpanContext } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { ParentBasedSampler, RandomIdGenerator, SamplingDecision, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace'
import type { IncomingHttpHeaders } from 'node:http'
import type { TracingConfig } from '../config/types.js'
import type { Clock } from '../util/clock.js'
import { RequestTrace, type TraceDeps } from './request-trace.js'
import { SpanQueue, type SpanQueueEvents } from './span-queue.js'
import { otlpExporter } from './otlp-transport.js'

/** Reads a header from Node's lower-cased header object (the propagator's getter). */
const HEADER_GETTER = {
  keys: (carrier: IncomingHttpHeaders): string[] => Object.keys(carrier),
  get: (carrier: IncomingHttpHeaders, key: string): string | string[] | undefined => carrier[key]
}

const NO_ATTRIBUTES = {}

/** The BatchSpanProcessor's settings, from the specification's OTEL_BSP_* variables where set. */
function queueOptions (env: Readonly<Record<string, string | undefined>>): { maxQueueSize: number, maxExportBatchSize: number, scheduledDelayMillis: number, exportTimeoutMillis: number } {
  const read = (name: string, fallback: number): number => {
    const value = Number(env[name])
    return env[name] !== undefined && Number.isInteger(value) && value > 0 ? value : fallback
  }
  const maxQueueSize = read('OTEL_BSP_MAX_QUEUE_SIZE', 2048)
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512)),
    scheduledDelayMillis: read('OTEL_BSP_SCHEDULE_DELAY', 5000),
    exportTimeoutMillis: read('OTEL_BSP_EXPORT_TIMEOUT', 30_000)
  }
}

/**
 * One process's tracing, from OpenTelemetry's pieces: the W3C propagator
 * (extraction), the parent-based ratio sampler and id generator, the
 * BatchSpanProcessor and the OTLP exporters. Spans are made by the request
 * object (request-trace.ts, recorded-span.ts), not by the SDK's tracer nor
 * by HTTP auto-instrumentation, and no context manager is involved: a
 * request holds its trace. Each worker exports its own spans, batched off
 * the request path (span-queue.ts); a collector that is down costs dropped
 * spans, counted, never a request's time.
 */
export class Tracing {
  readonly #propagator = new W3CTraceContextPropagator()
  readonly #sampler: Sampler
  readonly #ids = new RandomIdGenerator()
  readonly #queue: SpanQueue
  readonly #deps: TraceDeps
  readonly #config: TracingConfig

  constructor (config: TracingConfig, events: SpanQueueEvents, clock: Clock, env: Readonly<Record<string, string | undefined>> = process.env) {
    this.#config = config
    this.#queue = new SpanQueue(otlpExporter(config, clock), queueOptions(env), events)
    this.#sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) })
    const queue = this.#queue
    this.#deps = {
      origin: { resource: resourceFromAttributes({ ...config.resourceAttributes, 'service.name': config.serviceName, 'process.pid': process.pid }), scope: { name: 'srvgate' }, wallAtZeroMs: clock.wallNow() - clock.now() },
      now: () => clock.now(),
      spanId: () => this.#ids.generateSpanId(),
      finished: (span) => { queue.onEnd(span) }
    }
  }

  /**
   * A request's trace: under the one its `traceparent` names (from a client
   * outside trustedProxies too, unless tracing.restartAtEdge), else a new
   * one; recorded as the parent-based sampler decides. `startMs`: when the
   * request arrived (the clock's monotonic ms).
   */
  startRequest (headers: IncomingHttpHeaders, method: string, isPeerTrusted: boolean, startMs: number): RequestTrace {
    const isContinued = headers.traceparent !== undefined && (!this.#config.restartAtEdge || isPeerTrusted)
    const context = isContinued ? this.#propagator.extract(ROOT_CONTEXT, headers, HEADER_GETTER) : ROOT_CONTEXT
    const found = isContinued ? trace.getSpanContext(context) : undefined
    const parent = found !== undefined && isSpanContextValid(found) ? found : undefined
    const traceId = parent?.traceId ?? this.#ids.generateTraceId()
    const decision = this.#sampler.shouldSample(context, traceId, method, SpanKind.SERVER, NO_ATTRIBUTES, []).decision
    const own: SpanContext = {
      traceId,
      spanId: this.#ids.generateSpanId(),
      traceFlags: decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      traceState: parent?.traceState
    }
    return new RequestTrace(this.#deps, method, own, parent, startMs)
  }

  /** Every span finished so far sent (or dropped), then the exporter closed: at drain's end. */
  async shutdown (): Promise<void> {
    await this.#queue.shutdown()
  }
}
