import { ROOT_CONTEXT, SpanKind, type Context, type Tracer } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace'
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import type { IncomingHttpHeaders } from 'node:http'
import type { TracingConfig } from '../config/types.js'
import { RequestTrace } from './request-trace.js'
import { SpanQueue, type SpanQueueEvents } from './span-queue.js'

/** Reads a header from Node's lower-cased header object (the propagator's getter). */
const HEADER_GETTER = {
  keys: (carrier: IncomingHttpHeaders): string[] => Object.keys(carrier),
  get: (carrier: IncomingHttpHeaders, key: string): string | string[] | undefined => carrier[key]
}

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
 * One process's tracing: the OpenTelemetry SDK's tracer provider (sampler,
 * ids, span objects), W3C propagation and the OTLP exporters, with spans
 * made directly by the request object (request-trace.ts), not by HTTP
 * auto-instrumentation, and no context manager: every span is given its
 * parent explicitly. Each worker exports its own spans, batched off the
 * request path (span-queue.ts); a collector that is down costs dropped spans,
 * counted, never a request's time.
 */
export class Tracing {
  readonly #provider: TracerProvider
  readonly #tracer: Tracer
  readonly #propagator = new W3CTraceContextPropagator()
  readonly #config: TracingConfig

  constructor (config: TracingConfig, events: SpanQueueEvents, env: Readonly<Record<string, string | undefined>> = process.env) {
    this.#config = config
    const exporterOptions = { url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.timeoutMs }
    const exporter = config.protocol === 'http/json' ? new JsonExporter(exporterOptions) : new ProtobufExporter(exporterOptions)
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [new SpanQueue(exporter, queueOptions(env), events)]
    })
    this.#tracer = this.#provider.getTracer('srvgate')
  }

  get config (): TracingConfig { return this.#config }

  /**
   * A request's SERVER span, under the trace its `traceparent` names (from a
   * client outside trustedProxies too, unless tracing.restartAtEdge), else
   * in a new trace; `name` is refined once routing has chosen a frontend.
   */
  startRequest (headers: IncomingHttpHeaders, method: string, isPeerTrusted: boolean): RequestTrace {
    const parent: Context = headers.traceparent === undefined || (this.#config.restartAtEdge && !isPeerTrusted)
      ? ROOT_CONTEXT
      : this.#propagator.extract(ROOT_CONTEXT, headers, HEADER_GETTER)
    const span = this.#tracer.startSpan(method, { kind: SpanKind.SERVER }, parent)
    return new RequestTrace(this.#tracer, method, span, parent)
  }

  /** Every span finished so far sent (or dropped), then the exporter closed: at drain's end. */
  async shutdown (): Promise<void> {
    await this.#provider.shutdown()
  }
}
