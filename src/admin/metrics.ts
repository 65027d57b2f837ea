import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { CacheReadResult } from '../dns/cache.js'
import type { DnsObserver } from '../dns/types.js'
import type { Instance } from '../discovery/instance-set.js'
import type { DispatcherEvents } from '../proxy/dispatcher.js'
import type { Backend, BackendEvents, Outcome } from '../upstream/backend.js'

/** Instance states as the metrics and /admin/state name them. */
export type InstanceState = 'up' | 'ejected' | 'failing-check' | 'dns-removed'

/**
 * Every Prometheus metric, defined once (srvgate_<area>_<what>_<unit>), on a
 * registry of its own. The gateway's parts report through the observer
 * objects below; instance counts are read from the backends at scrape time.
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'frontend' | 'backend' | 'status_class'>
  readonly upstreamLatency: Histogram<'backend' | 'outcome'>
  readonly retries: Counter<'backend' | 'reason'>
  readonly ejections: Counter<'backend'>
  readonly dnsQueries: Counter<'nameserver' | 'transport' | 'outcome'>
  readonly dnsRejected: Counter<'nameserver' | 'transport' | 'reason'>
  readonly cacheReads: Counter<'result'>
  readonly reloads: Counter<'result'>
  readonly #backends: () => readonly Backend[]

  constructor (backends: () => readonly Backend[], instanceState: (backend: Backend, instance: Instance) => InstanceState) {
    this.#backends = backends
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'srvgate_process_' })
    this.requests = new Counter({ name: 'srvgate_http_requests_total', help: 'Requests answered, by frontend, backend and status class (2xx, 4xx, 5xx…).', labelNames: ['frontend', 'backend', 'status_class'], registers })
    this.upstreamLatency = new Histogram({
      name: 'srvgate_upstream_latency_seconds',
      help: 'Time from sending a request to an instance until its response headers (or failure), per attempt.',
      labelNames: ['backend', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    })
    this.retries = new Counter({ name: 'srvgate_upstream_retries_total', help: 'Requests sent again to another instance, by reason.', labelNames: ['backend', 'reason'], registers })
    this.ejections = new Counter({ name: 'srvgate_outlier_ejections_total', help: 'Instances ejected by passive health checks.', labelNames: ['backend'], registers })
    const self = this
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_backend_instances',
      help: 'Instances per backend by state (up, ejected, failing-check, dns-removed).',
      labelNames: ['backend', 'state'],
      registers,
      collect () {
        this.reset()
        // Templated backends share their template's label: counts add up.
        const byLabel = new Map<string, Record<InstanceState, number>>()
        for (const backend of self.#backends()) {
          const counts = byLabel.get(backend.metricLabel) ?? { up: 0, ejected: 0, 'failing-check': 0, 'dns-removed': 0 }
          byLabel.set(backend.metricLabel, counts)
          for (const instance of backend.set.instances) counts[instanceState(backend, instance)]++
          for (const record of backend.health.values()) if (!backend.set.has(record.key) && record.inFlight > 0) counts['dns-removed']++
        }
        for (const [label, counts] of byLabel) {
          for (const [state, count] of Object.entries(counts)) this.set({ backend: label, state }, count)
        }
      }
    })
    this.dnsQueries = new Counter({ name: 'srvgate_dns_queries_total', help: 'DNS queries by nameserver, transport and outcome (noerror, nxdomain, servfail, timeout, …).', labelNames: ['nameserver', 'transport', 'outcome'], registers })
    this.dnsRejected = new Counter({ name: 'srvgate_dns_rejected_answers_total', help: 'DNS answers not believed (spoofed ID, wrong question, QR=0, cut short, undecodable).', labelNames: ['nameserver', 'transport', 'reason'], registers })
    this.cacheReads = new Counter({ name: 'srvgate_dns_cache_reads_total', help: 'Resolver cache reads: hit, stale (served while DNS fails) or miss (waited for DNS).', labelNames: ['result'], registers })
    this.reloads = new Counter({ name: 'srvgate_config_reloads_total', help: 'Configuration reloads by result (ok, error).', labelNames: ['result'], registers })
  }

  readonly dnsObserver: DnsObserver = {
    queried: (event) => { this.dnsQueries.inc({ nameserver: event.nameserver, transport: event.transport, outcome: event.outcome }) },
    answerRejected: (event) => { this.dnsRejected.inc({ nameserver: event.nameserver, transport: event.transport, reason: event.reason }) }
  }

  readonly onCacheRead = (result: CacheReadResult): void => { this.cacheReads.inc({ result }) }

  readonly dispatcherEvents: DispatcherEvents = {
    retried: (backend, reason) => { this.retries.inc({ backend, reason }) },
    attemptFinished: (backend: string, _instance: Instance, outcome: Outcome, durationMs: number) => {
      this.upstreamLatency.observe({ backend, outcome }, durationMs / 1000)
    }
  }

  readonly backendEvents: BackendEvents = {
    instanceEjected: (backend) => { this.ejections.inc({ backend }) }
  }

  /** Requests per backend, for the dashboard's rates. */
  readonly requestsByBackend = new Map<string, number>()

  readonly recordRequest = (frontend: string | undefined, backend: string | undefined, status: number): void => {
    this.requests.inc({ frontend: frontend ?? '', backend: backend ?? '', status_class: `${Math.floor(status / 100)}xx` })
    if (backend !== undefined) this.requestsByBackend.set(backend, (this.requestsByBackend.get(backend) ?? 0) + 1)
  }
}
