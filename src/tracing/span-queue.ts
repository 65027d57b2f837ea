import { TraceFlags, type Context } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace'

/** What happens to finished spans, for the metrics. */
export type SpanQueueEvents = {
  readonly exported: (count: number) => void
  readonly dropped: (reason: 'queue_full' | 'export_failed', count: number) => void
}

export type SpanQueueOptions = {
  /** Most spans waiting for export in this process; past it a finished span is dropped (counted). */
  readonly maxQueueSize: number
  readonly maxExportBatchSize: number
  readonly scheduledDelayMillis: number
  readonly exportTimeoutMillis: number
}

/**
 * The SDK's BatchSpanProcessor (batches, a timer, off the request path),
 * with every span it drops counted: the processor drops silently when its
 * queue is full and an exporter's failure only reaches OpenTelemetry's diag
 * log. The queue's length is kept here (spans handed on, less spans handed
 * to the exporter), so a span the processor would drop is counted and not
 * handed on; the exporter is wrapped to count what it sent and what failed.
 */
export class SpanQueue implements SpanProcessor {
  readonly #batch: BatchSpanProcessor
  readonly #events: SpanQueueEvents
  readonly #maxQueueSize: number
  #queued = 0

  constructor (exporter: SpanExporter, options: SpanQueueOptions, events: SpanQueueEvents) {
    this.#events = events
    this.#maxQueueSize = options.maxQueueSize
    const counting: SpanExporter = {
      export: (spans, done) => {
        this.#queued = Math.max(0, this.#queued - spans.length)
        exporter.export(spans, (result: ExportResult) => {
          if (result.code === ExportResultCode.SUCCESS) events.exported(spans.length)
          else events.dropped('export_failed', spans.length)
          done(result)
        })
      },
      shutdown: async () => { await exporter.shutdown() },
      forceFlush: async () => { await exporter.forceFlush?.() }
    }
    this.#batch = new BatchSpanProcessor({ exporter: counting, ...options })
  }

  onStart (_span: Span, _context: Context): void {}

  onEnd (span: ReadableSpan): void {
    // The processor keeps sampled spans only (what the sampler recorded is sampled: none is recorded only).
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.#queued >= this.#maxQueueSize) {
      this.#events.dropped('queue_full', 1)
      return
    }
    this.#queued++
    this.#batch.onEnd(span)
  }

  async forceFlush (): Promise<void> { await this.#batch.forceFlush() }
  async shutdown (): Promise<void> { await this.#batch.shutdown() }
}
