import type { Counter, Gauge, Registry } from 'prom-client'
import { loadPromClient } from './prom-client-loader.js'
import { flushTallies, type Tally } from './counter-tally.js'

type QueryLabel = 'name' | 'type' | 'transport' | 'rcode'
/** Label sets tallied (configured names × types × transports × rcodes); past it, prom-client's own calls. */
const MAX_TALLIED = 4096

/**
 * The DNS face's metrics, in the registries of the process that answers it:
 * every cluster worker (SO_REUSEPORT), or the one process; /metrics sums the
 * workers' as it does their request counters.
 */
export class DnsFaceMetrics {
  readonly queries: Counter<QueryLabel>
  readonly staleAnswers: Counter<'name'>
  readonly truncated: Counter<'name'>
  readonly rateLimited: Counter<'transport' | 'limit'>
  readonly tcpRefused: Counter<'reason'>
  readonly tcpTimeouts: Counter<'timeout'>
  readonly tcpConnections: Gauge

  constructor (registers: Registry[]) {
    const { Counter, Gauge } = loadPromClient()
    const tallies = this.#tallies
    this.queries = new Counter({ name: 'srvgate_dns_face_queries_total', help: 'Queries to the DNS face by name (a configured label, or (zone), (nameserver): the face\'s own name, (address), (empty): _tcp or addr, names above others, (unknown), (outside), (none)), type, transport and rcode (dropped: not answered).', labelNames: ['name', 'type', 'transport', 'rcode'], registers, collect () { flushTallies(this, tallied(tallies)) } })
    this.staleAnswers = new Counter({ name: 'srvgate_dns_face_stale_answers_total', help: 'DNS face answers built from stale instance sets (DNS behind srvgate failing), with TTL 30 s.', labelNames: ['name'], registers })
    this.truncated = new Counter({ name: 'srvgate_dns_face_truncated_answers_total', help: 'DNS face UDP answers cut with TC set (the client asks again over TCP).', labelNames: ['name'], registers })
    this.rateLimited = new Counter({ name: 'srvgate_dns_face_rate_limited_total', help: 'DNS face queries dropped by dns.rateLimit, by transport and limit (source: the source block\'s bucket, /24 or /56; global: globalPerSecond, UDP only).', labelNames: ['transport', 'limit'], registers })
    this.tcpRefused = new Counter({ name: 'srvgate_dns_face_tcp_refused_total', help: 'DNS face TCP connections closed at once, by the cap they met (max-connections, max-connections-per-source: dns.tcp).', labelNames: ['reason'], registers })
    this.tcpTimeouts = new Counter({ name: 'srvgate_dns_face_tcp_timeouts_total', help: 'DNS face TCP connections closed by a deadline (message: not whole within dns.tcp.messageTimeout; idle: dns.tcp.idleTimeout).', labelNames: ['timeout'], registers })
    this.tcpConnections = new Gauge({ name: 'srvgate_dns_face_tcp_connections', help: 'DNS face TCP connections open now (bounded by dns.tcp.maxConnections in each process that answers).', registers })
  }

  /** Queries per name, type, transport and rcode, by label values (maps of maps: nothing built per query); added to `queries` when it is read. */
  readonly #tallies = new Map<string, Map<string, Map<string, Map<string, Tally<QueryLabel>>>>>()
  #tallied = 0

  /** One query answered (or dropped): a per-query call, about 1 µs cheaper than prom-client's `labels().inc()`, which hashes the labels each time. */
  countQuery (name: string, type: string, transport: string, rcode: string): void {
    const byType = branch(this.#tallies, name)
    const byTransport = branch(byType, type)
    const byRcode = branch(byTransport, transport)
    let tally = byRcode.get(rcode)
    if (tally === undefined) {
      if (this.#tallied >= MAX_TALLIED) {
        this.queries.labels(name, type, transport, rcode).inc()
        return
      }
      tally = { labels: { name, type, transport, rcode }, pending: 0 }
      byRcode.set(rcode, tally)
      this.#tallied++
    }
    tally.pending++
  }
}

function branch<Value> (map: Map<string, Map<string, Value>>, key: string): Map<string, Value> {
  let found = map.get(key)
  if (found === undefined) {
    found = new Map()
    map.set(key, found)
  }
  return found
}

function * tallied (tallies: Map<string, Map<string, Map<string, Map<string, Tally<QueryLabel>>>>>): Generator<Tally<QueryLabel>> {
  for (const byType of tallies.values()) for (const byTransport of byType.values()) for (const byRcode of byTransport.values()) yield * byRcode.values()
}
