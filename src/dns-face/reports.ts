import type { GatewayMetrics } from '../admin/metrics.js'
import type { Log } from '../log/process-log.js'
import type { DnsFaceDeps } from './dns-face.js'

type Reports = Pick<DnsFaceDeps, 'onQuery' | 'onRateLimited' | 'onTcpRefused' | 'onTcpTimeout' | 'onTcpConnections' | 'onError'>

/** What the face reports, into a process's metrics and log: the same in the primary and in each worker (the primary adds the workers' up). */
export function faceReports (metrics: GatewayMetrics, log: Log): Reports {
  return {
    onQuery: (outcome, transport) => {
      metrics.dnsFace.countQuery(outcome.name, outcome.type, transport, outcome.rcode)
      if (outcome.isStale) metrics.dnsFace.staleAnswers.labels(outcome.name).inc()
      if (outcome.isTruncated) metrics.dnsFace.truncated.labels(outcome.name).inc()
    },
    onRateLimited: (transport, limit) => { metrics.dnsFace.rateLimited.labels(transport, limit).inc() },
    onTcpRefused: (reason) => { metrics.dnsFace.tcpRefused.labels(reason).inc() },
    onTcpTimeout: (timeout) => { metrics.dnsFace.tcpTimeouts.labels(timeout).inc() },
    onTcpConnections: (open) => { metrics.dnsFace.tcpConnections.set(open) },
    onError: (error) => { log.error({ err: error }, 'DNS face: a query could not be answered') }
  }
}
