import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace'
import { SpanQueue } from '../../../src/tracing/span-queue.js'

/** An exporter that holds each export until told how it went. */
class HeldExporter implements SpanExporter {
  readonly batches: Array<{ readonly spans: ReadableSpan[], readonly done: (result: ExportResult) => void }> = []
  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void { this.batches.push({ spans, done }) }
  async shutdown (): Promise<void> {}
}

function setup (maxQueueSize: number): { exporter: HeldExporter, counts: { exported: number, queue_full: number, export_failed: number }, end: (count: number) => void, queue: SpanQueue } {
  const exporter = new HeldExporter()
  const counts = { exported: 0, queue_full: 0, export_failed: 0 }
  const queue = new SpanQueue(exporter, { maxQueueSize, maxExportBatchSize: maxQueueSize, scheduledDelayMillis: 60_000, exportTimeoutMillis: 60_000 }, {
    exported: (count) => { counts.exported += count },
    dropped: (reason, count) => { counts[reason] += count }
  })
  const tracer = new TracerProvider({ spanProcessors: [queue] }).getTracer('test')
  const end = (count: number): void => { for (let index = 0; index < count; index++) tracer.startSpan(`span ${index}`).end() }
  return { exporter, counts, end, queue }
}

test('span queue: while an export is under way, past maxQueueSize a finished span is dropped and counted (queue_full), not handed on; spans taken for export make room again', async () => {
  const { exporter, counts, end } = setup(4)
  end(4)
  assert.equal(exporter.batches.length, 1, 'a full batch leaves at once')
  assert.equal(exporter.batches[0]?.spans.length, 4)
  end(6)
  assert.equal(counts.queue_full, 2, 'four wait behind the export, two are dropped')
  exporter.batches[0]?.done({ code: ExportResultCode.SUCCESS })
  assert.equal(counts.exported, 4)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(exporter.batches.length, 2, 'the next batch: the four that waited')
  assert.equal(exporter.batches[1]?.spans.length, 4)
  end(4)
  assert.equal(counts.queue_full, 2, 'room again: the queue emptied into the export')
  exporter.batches[1]?.done({ code: ExportResultCode.SUCCESS })
  assert.equal(counts.exported, 8)
})

test('span queue: an export the collector refuses counts its spans as dropped (export_failed), none as exported', async () => {
  const { exporter, counts, end, queue } = setup(16)
  end(3)
  const flushed = queue.forceFlush()
  exporter.batches[0]?.done({ code: ExportResultCode.FAILED, error: new Error('503') })
  await flushed.catch(() => {})
  assert.deepEqual(counts, { exported: 0, queue_full: 0, export_failed: 3 })
})
