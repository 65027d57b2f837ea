import type { Log } from '../log/process-log.js'
import type { Clock } from '../util/clock.js'
import type { SpanQueueEvents } from './span-queue.js'

/** At most one warning a minute: a collector that stays down must not fill the log. */
const WARN_EVERY_MS = 60_000

/**
 * The span queue's events into the metrics, and dropped spans into the log
 * too: the first drop at once, then at most a warning a minute with what
 * was dropped since (Envoy and Caddy warn when their collector refuses).
 */
export function warnOfDrops (events: SpanQueueEvents, log: Log, clock: Clock, endpoint: string): SpanQueueEvents {
  let lastWarnedMs: number | undefined
  const dropped = { queue_full: 0, export_failed: 0 }
  return {
    exported: events.exported,
    dropped: (reason, count) => {
      events.dropped(reason, count)
      dropped[reason] += count
      const now = clock.now()
      if (lastWarnedMs !== undefined && now - lastWarnedMs < WARN_EVERY_MS) return
      lastWarnedMs = now
      log.warn({ endpoint, exportFailed: dropped.export_failed, queueFull: dropped.queue_full }, 'tracing: spans dropped (export_failed: the collector refused them or did not answer within tracing.otlp.timeout; queue_full: more finished spans waiting than the queue holds); requests are not affected')
      dropped.queue_full = 0
      dropped.export_failed = 0
    }
  }
}
