import type { Counter, Registry } from 'prom-client'
import { loadPromClient } from './prom-client-loader.js'
import type { SpanQueueEvents } from '../tracing/span-queue.js'

/** Spans of each process that serves traffic (its own exporter): /metrics sums the workers' as it does their request counters. */
export class TracingMetrics {
  readonly spansExported: Counter
  readonly spansDropped: Counter<'reason'>
  readonly events: SpanQueueEvents

  constructor (registers: Registry[]) {
    const { Counter } = loadPromClient()
    this.spansExported = new Counter({ name: 'srvgate_tracing_spans_exported_total', help: 'Spans the collector accepted (tracing.otlp).', registers })
    this.spansDropped = new Counter({ name: 'srvgate_tracing_spans_dropped_total', help: 'Spans not delivered, by reason (queue_full: more finished spans waiting than OTEL_BSP_MAX_QUEUE_SIZE, 2048; export_failed: the collector refused or could not be reached within tracing.otlp.timeout). Requests are never slowed for them.', labelNames: ['reason'], registers })
    // Both series from the start, at 0: an alert on their rate needs them before the first drop.
    for (const reason of ['queue_full', 'export_failed']) this.spansDropped.inc({ reason }, 0)
    this.events = {
      exported: (count) => { this.spansExported.inc(count) },
      dropped: (reason, count) => { this.spansDropped.inc({ reason }, count) }
    }
  }
}
