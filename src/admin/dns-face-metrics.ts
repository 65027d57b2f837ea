import type { Counter, Gauge, Registry } from 'prom-client'
import { loadPromClient } from './prom-client-loader.js'

/**
 * The DNS face's metrics, in the registries of the process that answers it:
 * every cluster worker (SO_REUSEPORT), or the one process; /metrics sums the
 * workers' as it does their request counters.
 */
export class DnsFaceMetrics {
  readonly queries: Counter<'name' | 'type' | 'transport' | 'rcode'>
  readonly staleAnswers: Counter<'name'>
  readonly truncated: Counter<'name'>
  readonly rateLimited: Counter<'transport' | 'limit'>
  readonly tcpRefused: Counter<'reason'>
  readonly tcpTimeouts: Counter<'timeout'>
  readonly tcpConnections: Gauge

  constructor (registers: Registry[]) {
    const { Counter, Gauge } = loadPromClient()
    this.queries = new Counter({ name: 'srvgate_dns_face_queries_total', help: 'Queries to the DNS face by name (a configured label, or (zone), (nameserver): the face\'s own name, (address), (empty): _tcp or addr, names above others, (unknown), (outside), (none)), type, transport and rcode (dropped: not answered).', labelNames: ['name', 'type', 'transport', 'rcode'], registers })
    this.staleAnswers = new Counter({ name: 'srvgate_dns_face_stale_answers_total', help: 'DNS face answers built from stale instance sets (DNS behind srvgate failing), with TTL 30 s.', labelNames: ['name'], registers })
    this.truncated = new Counter({ name: 'srvgate_dns_face_truncated_answers_total', help: 'DNS face UDP answers cut with TC set (the client asks again over TCP).', labelNames: ['name'], registers })
    this.rateLimited = new Counter({ name: 'srvgate_dns_face_rate_limited_total', help: 'DNS face queries dropped by dns.rateLimit, by transport and limit (source: the source block\'s bucket, /24 or /56; global: globalPerSecond, UDP only).', labelNames: ['transport', 'limit'], registers })
    this.tcpRefused = new Counter({ name: 'srvgate_dns_face_tcp_refused_total', help: 'DNS face TCP connections closed at once, by the cap they met (max-connections, max-connections-per-source: dns.tcp).', labelNames: ['reason'], registers })
    this.tcpTimeouts = new Counter({ name: 'srvgate_dns_face_tcp_timeouts_total', help: 'DNS face TCP connections closed by a deadline (message: not whole within dns.tcp.messageTimeout; idle: dns.tcp.idleTimeout).', labelNames: ['timeout'], registers })
    this.tcpConnections = new Gauge({ name: 'srvgate_dns_face_tcp_connections', help: 'DNS face TCP connections open now (bounded by dns.tcp.maxConnections in each process that answers).', registers })
  }
}
