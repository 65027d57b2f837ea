import type { Counter, Gauge, Histogram, Registry, MetricObjectWithValues, MetricValue } from 'prom-client'
import { loadPromClient } from './prom-client-loader.js'
import type { CacheReadResult } from '../dns/cache.js'
import type { DnsObserver } from '../dns/types.js'
import type { Instance } from '../discovery/instance-set.js'
import type { DispatcherEvents } from '../proxy/attempt.js'
import type { FinishedRequest } from '../proxy/request-end.js'
import type { Clock } from '../util/clock.js'
import type { Backend, BackendEvents, Outcome } from '../upstream/backend.js'
import type { ServedCertificate } from '../tls/certificates.js'
import { HistogramTally } from './histogram-tally.js'
import { flushTallies, type Tally } from './counter-tally.js'
import { DnsFaceMetrics } from './dns-face-metrics.js'
import { TracingMetrics } from './tracing-metrics.js'
import { InstanceMetrics } from './instance-metrics.js'
import { innerMap } from '../util/maps.js'

/** Instance states as the metrics and /admin/state name them. */
export type InstanceState = 'up' | 'ejected' | 'failing-check' | 'dns-removed'

/**
 * Every Prometheus metric, defined once (srvgate_<area>_<what>_<unit>), on a
 * registry of its own. The gateway's parts report through the observer
 * objects below; instance counts are read from the backends at scrape time.
 */
/** Counts the data plane keeps, read at scrape time. */
export type TrafficSources = { readonly upstreamConnections: () => number, readonly clientConnections: () => number, readonly bufferedBodyBytes: () => number }

const NO_TRAFFIC: TrafficSources = { upstreamConnections: () => 0, clientConnections: () => 0, bufferedBodyBytes: () => 0 }

export class GatewayMetrics {
  readonly registry: Registry
  readonly requests: Counter<'frontend' | 'backend' | 'status_class' | 'code'>
  readonly requestDuration: Histogram<'frontend' | 'backend' | 'status_class'>
  readonly inFlight: Gauge
  readonly lastReloadSuccessful: Gauge
  readonly lastReloadSuccessTimestamp: Gauge
  readonly restartNeeded: Gauge<'field'>
  readonly upstreamLatency: Histogram<'backend' | 'outcome'>
  readonly retries: Counter<'backend' | 'reason'>
  readonly ejections: Counter<'backend'>
  readonly dnsQueries: Counter<'nameserver' | 'transport' | 'outcome'>
  readonly dnsRejected: Counter<'nameserver' | 'transport' | 'reason'>
  readonly cacheReads: Counter<'result'>
  readonly reloads: Counter<'result'>
  readonly acmeOrders: Counter<'result'>
  readonly acmeOnDemandRefusals: Counter<'reason'>
  readonly acmeStorageUp: Gauge
  readonly protocolRequests: Counter<'protocol'>
  readonly splitRequests: Counter<'split' | 'backend'>
  readonly failoverRequests: Counter<'backend' | 'target' | 'discovery'>
  readonly tlsHandshakes: Counter<'result'>
  readonly clientConnectionsRefused: Counter<'listener' | 'reason'>
  readonly tlsHandshakeFailures: Counter<'reason'>
  readonly tlsResumedHandshakes: Counter
  /** The DNS face's, counted where it answers (every worker, or the primary). */
  readonly dnsFace: DnsFaceMetrics
  readonly tracing: TracingMetrics
  readonly templatedRefused: Counter<'reason'>
  readonly rateLimitStoreFailures: Counter
  /** metrics.perInstance's series (off unless the configuration says so). */
  readonly instances: InstanceMetrics
  readonly #backends: () => readonly Backend[]

  readonly #clock: Clock
  #traffic: TrafficSources = NO_TRAFFIC
  #certificates: () => readonly ServedCertificate[] = () => []
  #servedNames: () => ReadonlyArray<{ readonly name: string, readonly source: 'file' | 'acme', readonly notAfterMs: number }> = () => []

  /**
   * `role: 'client'` (srvgate/client): only what a library in someone else's
   * process does (discovery, health, attempts, pools), into their registry;
   * no edge, reload, TLS or DNS face metrics, no process metrics.
   */
  constructor (backends: () => readonly Backend[], instanceState: (backend: Backend, instance: Instance) => InstanceState, options: { readonly version: string, readonly clock: Clock, readonly role?: 'primary' | 'worker' | 'in-process' | 'client', readonly registry?: Registry }) {
    this.#clock = options.clock
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = loadPromClient()
    // prom-client calls collect() with the metric as `this`: the gateway's own counts are reached through `self`.
    const self = this
    this.#backends = backends
    this.registry = options.registry ?? new Registry()
    const registers = [this.registry]
    // In a cluster, what the primary alone does (discovery, health, reloads) is registered there
    // only; requests are counted where they are served. /metrics aggregates the registries.
    const isDataPlane = options.role === 'worker' || options.role === 'in-process'
    const control = isDataPlane ? [] : registers
    const isClient = options.role === 'client'
    // What only a gateway has: its edge, its reloads, its listeners.
    const edge = isClient ? [] : registers
    const edgeControl = isClient ? [] : control
    // One process: the control plane's registry has them already (/metrics aggregates both).
    if (!isClient && options.role !== 'in-process') {
      // The standard process_* and nodejs_* names dashboards expect, minus prom-client's
      // `_total` gauges (a gauge never ends in _total): nodejs_active_resources{type} has their counts.
      collectDefaultMetrics({ register: this.registry })
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name)
    }
    // eslint-disable-next-line no-new
    new Gauge({ name: 'srvgate_build_info', help: 'Always 1; the labels say which srvgate and Node.js run.', labelNames: ['version', 'nodejs_version'], registers: edgeControl })
      .set({ version: options.version, nodejs_version: process.version }, 1)
    this.requests = new Counter({ name: 'srvgate_http_requests_total', help: 'Requests answered at the edge, by frontend, backend, status class (2xx, 4xx, 5xx; 499: the client left) and status code. "(none)" when no frontend or backend was chosen.', labelNames: ['frontend', 'backend', 'status_class', 'code'], registers: edge, collect () { flushTallies(this, self.#edgeTallies()) } })
    this.requestDuration = new Histogram({
      name: 'srvgate_http_request_duration_seconds',
      help: 'Time from a request\'s arrival to the end of its answer, at the edge, by frontend, backend and status class.',
      labelNames: ['frontend', 'backend', 'status_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: edge,
      collect () { for (const byBackend of self.#durationTallies.values()) for (const byClass of byBackend.values()) for (const tally of byClass.values()) tally.flush() }
    })
    this.inFlight = new Gauge({ name: 'srvgate_http_requests_in_flight', help: 'Requests received and not yet answered or abandoned.', registers: edge, collect () { this.set(self.#inFlight) } })
    this.lastReloadSuccessful = new Gauge({ name: 'srvgate_config_last_reload_successful', help: '1 when the last reload (or the start) applied the configuration, 0 when it was refused.', registers: edgeControl })
    this.lastReloadSuccessTimestamp = new Gauge({ name: 'srvgate_config_last_reload_success_timestamp_seconds', help: 'When a configuration was last applied (start or reload), Unix time.', registers: edgeControl })
    this.restartNeeded = new Gauge({ name: 'srvgate_config_restart_needed', help: '1 for each field bound at start (listen.http, workers, dns.listen, ...) that the applied configuration changes: the new value waits for a restart. No series when everything applied.', labelNames: ['field'], registers: edgeControl })
    this.lastReloadSuccessful.set(1)
    this.lastReloadSuccessTimestamp.set(this.#clock.wallNow() / 1000)
    this.upstreamLatency = new Histogram({
      name: 'srvgate_upstream_latency_seconds',
      help: 'Time from sending a request to an instance until its response headers (or failure), per attempt.',
      labelNames: ['backend', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
      collect () { for (const byOutcome of self.#latencyTallies.values()) for (const tally of byOutcome.values()) tally.flush() }
    })
    this.retries = new Counter({ name: 'srvgate_upstream_retries_total', help: 'Requests sent again to another instance, by reason.', labelNames: ['backend', 'reason'], registers })
    this.ejections = new Counter({ name: 'srvgate_outlier_ejections_total', help: 'Instances ejected by passive health checks.', labelNames: ['backend'], registers: control })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_backend_instances',
      help: 'Instances per backend by state (up, ejected, failing-check, dns-removed).',
      labelNames: ['backend', 'state'],
      registers: control,
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
    this.dnsQueries = new Counter({ name: 'srvgate_dns_queries_total', help: 'DNS queries by nameserver, transport and outcome (noerror, nxdomain, servfail, timeout, …).', labelNames: ['nameserver', 'transport', 'outcome'], registers: control })
    this.dnsRejected = new Counter({ name: 'srvgate_dns_rejected_answers_total', help: 'DNS answers not believed (spoofed ID, wrong question, QR=0, cut short, undecodable).', labelNames: ['nameserver', 'transport', 'reason'], registers: control })
    this.cacheReads = new Counter({ name: 'srvgate_dns_cache_reads_total', help: 'Reads of the resolver cache by discovery: hit (served fresh), stale (served while DNS fails) or miss (nothing servable: waited for DNS). hit / (hit + miss) is the hit ratio.', labelNames: ['result'], registers: control })
    this.reloads = new Counter({ name: 'srvgate_config_reloads_total', help: 'Configuration reloads by result (ok, error).', labelNames: ['result'], registers: edgeControl })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_upstream_connections',
      help: 'Connections open to instances now (idle keep-alive ones included); bounded by the instances srvgate knows: a departed instance\'s close once its requests finish.',
      registers,
      collect () { this.set(self.#traffic.upstreamConnections()) }
    })
    this.dnsFace = new DnsFaceMetrics(edge)
    this.tracing = new TracingMetrics(edge)
    this.instances = new InstanceMetrics(edge)
    // Counted where refused: a cluster's primary (newPerSecond, its bound) or a worker (its own bound); /metrics sums them.
    this.templatedRefused = new Counter({ name: 'srvgate_templated_backends_refused_total', help: 'New environments that got no templated backend, by reason (rate: templatedBackends.newPerSecond spent, answered 503 with Retry-After, DNS not asked; bound: templatedBackends.max reached with every one busy).', labelNames: ['reason'], registers: edge })
    this.rateLimitStoreFailures = new Counter({ name: 'srvgate_rate_limit_store_failures_total', help: 'Requests to a frontend with rateLimit.store.redis that Redis could not decide (unreachable, or no answer within its timeout): the gateway\'s own limit decided them (fail open).', registers: edge })
    this.splitRequests = new Counter({ name: 'srvgate_split_requests_total', help: 'Requests a split sent to each member backend.', labelNames: ['split', 'backend'], registers: edge })
    this.failoverRequests = new Counter({ name: 'srvgate_failover_requests_total', help: 'Requests served by a failover target (another datacenter) because the backend had no usable instance, by backend, target (api~failover-1, as in the access log and /admin/state) and the target\'s DNS name.', labelNames: ['backend', 'target', 'discovery'], registers: edge })
    this.protocolRequests = new Counter({ name: 'srvgate_http_protocol_requests_total', help: 'Requests answered at the edge by protocol (HTTP/1.0, HTTP/1.1, HTTP/2).', labelNames: ['protocol'], registers: edge, collect () { flushTallies(this, self.#protocolTallies.values()) } })
    this.clientConnectionsRefused = new Counter({ name: 'srvgate_client_connections_refused_total', help: 'Client connections closed at accept by listener (http, https) and reason (max_connections: client.maxConnections of this process reached; max_connections_per_ip: client.maxConnectionsPerIp of that address reached).', labelNames: ['listener', 'reason'], registers: edge })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_client_connections',
      help: 'Client connections open now on the public listeners (http and https), what client.maxConnections bounds.',
      registers: edge,
      collect () { this.set(self.#traffic.clientConnections()) }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_request_body_buffered_bytes',
      help: 'Bytes of request bodies held in memory now (received whole before an instance is asked; bounded by client.bufferTotalBytes per process).',
      registers: edge,
      collect () { this.set(self.#traffic.bufferedBodyBytes()) }
    })
    this.tlsHandshakes = new Counter({ name: 'srvgate_tls_handshakes_total', help: 'TLS handshakes on the HTTPS listener, by result (ok, failed).', labelNames: ['result'], registers: edge })
    this.tlsHandshakeFailures = new Counter({ name: 'srvgate_tls_handshake_failures_total', help: 'Failed TLS handshakes by reason (unknown_name: no certificate for the SNI name and no default; protocol: version or cipher; timeout: not finished within client.headersTimeout; client_closed; other).', labelNames: ['reason'], registers: edge })
    this.tlsResumedHandshakes = new Counter({ name: 'srvgate_tls_resumed_handshakes_total', help: 'TLS handshakes on the HTTPS listener that resumed a session by ticket (no key exchange, no certificate sent); also counted in srvgate_tls_handshakes_total.', registers: edge })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_tls_certificate_expiry_timestamp_seconds',
      help: 'When each certificate of tls.certificates stops being valid (notAfter), Unix time.',
      labelNames: ['file', 'serial', 'names'],
      registers: edgeControl,
      collect () {
        this.reset()
        for (const certificate of self.#certificates()) this.set({ file: certificate.certPath, serial: certificate.serial, names: certificate.names.join(',') }, certificate.notAfterMs / 1000)
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'srvgate_certificate_expiry_timestamp_seconds',
      help: 'When the certificate served for each name stops being valid (notAfter), Unix time; source: file (tls.certificates) or acme (tls.acme).',
      labelNames: ['name', 'source'],
      registers: edgeControl,
      collect () {
        this.reset()
        for (const served of self.#servedNames()) this.set({ name: served.name, source: served.source }, served.notAfterMs / 1000)
      }
    })
    this.acmeOnDemandRefusals = new Counter({ name: 'srvgate_acme_on_demand_refusals_total', help: 'Handshakes for a name without a certificate that got none on demand, by reason (no-frontend, env-pattern, no-instance: the permission check; rate: onDemand.perMinute; max: onDemand.max).', labelNames: ['reason'], registers: edgeControl })
    this.acmeStorageUp = new Gauge({ name: 'srvgate_acme_storage_up', help: 'tls.acme.storage.redis answers (1) or not (0): while 0, certificates in hand keep serving and new orders wait for their retry.', registers: edgeControl })
    this.acmeOrders = new Counter({ name: 'srvgate_acme_orders_total', help: 'Certificate orders to the ACME CA by result (issued, failed); a failed order is retried with backoff.', labelNames: ['result'], registers: edgeControl })
  }

  readonly dnsObserver: DnsObserver = {
    queried: (event) => {
      this.dnsQueries.inc({ nameserver: event.nameserver, transport: event.transport, outcome: event.outcome })
      this.#dnsQueryCount++
    },
    answerRejected: (event) => { this.dnsRejected.inc({ nameserver: event.nameserver, transport: event.transport, reason: event.reason }) }
  }

  readonly onCacheRead = (result: CacheReadResult): void => { this.cacheReads.inc({ result }) }

  readonly templateRefused = (reason: 'rate' | 'bound'): void => { this.templatedRefused.inc({ reason }) }

  readonly dispatcherEvents: DispatcherEvents = {
    retried: (backend, reason) => { this.retries.inc({ backend, reason }) },
    attemptFinished: (backend: string, instance: Instance, outcome: Outcome, durationMs: number) => {
      this.#latencyChild(backend, outcome).observe(durationMs / 1000)
      this.instances.attemptFinished(backend, instance, outcome, durationMs)
    }
  }

  readonly backendEvents: BackendEvents = {
    instanceEjected: (backend) => { this.ejections.inc({ backend }) }
  }

  /** Requests (and 5xx answers) per backend by its own name (per environment), for /admin/state and the dashboard; bounded. */
  readonly requestsByBackend = new Map<string, { requests: number, errors: number }>()
  #dnsQueryCount = 0
  /** Requests per (frontend, backend, status class): counted here, added to the counter when it is read; their durations observed at once. */
  readonly #edgeChildren = new Map<string, Map<string, Map<number, EdgeTally>>>()
  /** The duration histogram per (frontend, backend, status class): shared by the codes of a class (a code label there would multiply the buckets). */
  readonly #durationTallies = new Map<string, Map<string, Map<string, HistogramTally<'frontend' | 'backend' | 'status_class'>>>>()
  #edgeCount = 0
  readonly #protocolTallies = new Map<string, Tally<'protocol'>>()
  /** Upstream latency per (backend, outcome), by label values like the edge tallies. */
  readonly #latencyTallies = new Map<string, Map<Outcome, HistogramTally<'backend' | 'outcome'>>>()
  #latencyCount = 0
  #inFlight = 0

  /** The data plane's live counts, read when /metrics is scraped (set once it is built). */
  countTraffic (sources: Partial<TrafficSources>): void { this.#traffic = { ...NO_TRAFFIC, ...sources } }

  /** The certificates served, read when /metrics is scraped (the control plane's view of the files). */
  countCertificates (certificates: () => readonly ServedCertificate[]): void { this.#certificates = certificates }

  /** The certificate each name is served with, whatever its source: srvgate_certificate_expiry_timestamp_seconds. */
  countServedNames (served: () => ReadonlyArray<{ readonly name: string, readonly source: 'file' | 'acme', readonly notAfterMs: number }>): void { this.#servedNames = served }

  readonly acmeOrdered = (result: 'issued' | 'failed'): void => { this.acmeOrders.inc({ result }) }
  readonly acmeRefusedOnDemand = (reason: string): void => { this.acmeOnDemandRefusals.inc({ reason }) }

  /** DNS queries sent since start (the dashboard's chart). */
  get dnsQueryCount (): number { return this.#dnsQueryCount }

  readonly requestStarted = (): void => { this.#inFlight++ }

  /** A request that went through the proxy plugin ended (answered or abandoned). */
  readonly requestFinished = (request: FinishedRequest): void => {
    this.#inFlight--
    this.requestEnded(request)
  }

  /**
   * Every finished request, counted once: proxied ones through requestFinished (which also
   * leaves the in-flight gauge), raw refusals and WebSocket handshakes directly.
   */
  readonly requestEnded = (request: FinishedRequest): void => {
    if (request.protocol !== undefined) this.#protocolTally(request.protocol).pending++
    const frontend = request.frontend ?? '(none)'
    const backend = request.backend ?? '(none)'
    const statusClass = STATUS_CLASSES[Math.floor(request.status / 100)] ?? `${Math.floor(request.status / 100)}xx`
    // prom-client hashes a label object on every call; the tallies are kept by label values instead
    // (maps of maps: no key string is built per request).
    const byCode = innerMap(innerMap(this.#edgeChildren, frontend), backend)
    let children = byCode.get(request.status)
    // Bounded by frontends × metric labels × status codes (templated backends share a label).
    if (children === undefined && this.#edgeCount < MAX_COUNTED) {
      const labels = { frontend, backend, status_class: statusClass, code: String(request.status) }
      children = { labels, pending: 0, duration: this.#durationTally(frontend, backend, statusClass) }
      byCode.set(request.status, children)
      this.#edgeCount++
    }
    if (children !== undefined) {
      children.pending++
      children.duration.observe(request.durationSeconds)
    } else {
      // Past the bound: prom-client's own calls, nothing kept here.
      this.requests.inc({ frontend, backend, status_class: statusClass, code: String(request.status) })
      this.requestDuration.observe({ frontend, backend, status_class: statusClass }, request.durationSeconds)
    }
    // Rare enough (splits, failover) that prom-client's label lookup is fine here.
    if (request.split !== undefined) this.splitRequests.labels(request.split, backend).inc()
    // Bounded: failover targets are a static backend's, one DNS name each, from the file.
    if (request.failoverTarget !== undefined) this.failoverRequests.labels(backend, request.failoverTarget, request.failoverDiscovery ?? '').inc()
    const name = request.backendName
    if (name === undefined) return
    // Templated backends come and go: the map keeps at most MAX_COUNTED names, dropping the oldest.
    if (!this.requestsByBackend.has(name) && this.requestsByBackend.size >= MAX_COUNTED) {
      const oldest = this.requestsByBackend.keys().next().value
      if (oldest !== undefined) this.requestsByBackend.delete(oldest)
    }
    const counts = this.requestsByBackend.get(name) ?? { requests: 0, errors: 0 }
    counts.requests++
    if (request.status >= 500) counts.errors++
    this.requestsByBackend.set(name, counts)
  }

  /**
   * The Prometheus text: this registry alone, or with every cluster worker's
   * (`getMetricsAsJSON()` of each), aggregated by prom-client (counters and
   * histograms summed; each default metric by its own aggregator).
   */
  async exposition (workers?: readonly unknown[][]): Promise<string> {
    if (workers === undefined) return await this.registry.metrics()
    const own = await this.registry.getMetricsAsJSON()
    const all = [own, ...workers] as Array<Array<MetricObjectWithValues<MetricValue<string>>>>
    return await loadPromClient().AggregatorRegistry.aggregate(all).metrics()
  }


  #protocolTally (protocol: string): Tally<'protocol'> {
    let tally = this.#protocolTallies.get(protocol)
    if (tally === undefined) {
      tally = { labels: { protocol }, pending: 0 }
      this.#protocolTallies.set(protocol, tally)
    }
    return tally
  }

  #latencyChild (backend: string, outcome: Outcome): { observe: (value: number) => void } {
    let byOutcome = this.#latencyTallies.get(backend)
    if (byOutcome === undefined) {
      byOutcome = new Map()
      this.#latencyTallies.set(backend, byOutcome)
    }
    const tally = byOutcome.get(outcome)
    if (tally !== undefined) return tally
    // Past the bound: prom-client's own calls, nothing kept here.
    if (this.#latencyCount >= MAX_COUNTED) return this.upstreamLatency.labels({ backend, outcome })
    const made = new HistogramTally(this.upstreamLatency, { backend, outcome })
    byOutcome.set(outcome, made)
    this.#latencyCount++
    return made
  }

  #durationTally (frontend: string, backend: string, statusClass: string): HistogramTally<'frontend' | 'backend' | 'status_class'> {
    const byClass = innerMap(innerMap(this.#durationTallies, frontend), backend)
    let tally = byClass.get(statusClass)
    if (tally === undefined) {
      tally = new HistogramTally(this.requestDuration, { frontend, backend, status_class: statusClass })
      byClass.set(statusClass, tally)
    }
    return tally
  }

  * #edgeTallies (): Generator<EdgeTally> {
    for (const byBackend of this.#edgeChildren.values()) for (const byStatus of byBackend.values()) yield * byStatus.values()
  }

  /** The HTTPS listener's handshakes (tls/listener.ts reports them). */
  readonly tlsEvents = {
    handshake: (resumed: boolean): void => {
      this.tlsHandshakes.inc({ result: 'ok' })
      if (resumed) this.tlsResumedHandshakes.inc()
    },
    handshakeFailed: (reason: string): void => {
      this.tlsHandshakes.inc({ result: 'failed' })
      this.tlsHandshakeFailures.inc({ reason })
    }
  }

  /** A reload applied (with the restart-only fields it could not apply) or refused (undefined: what runs is unchanged). */
  readonly reloaded = (isOk: boolean, restartNeeded?: readonly string[]): void => {
    this.reloads.inc({ result: isOk ? 'ok' : 'error' })
    this.lastReloadSuccessful.set(isOk ? 1 : 0)
    if (isOk) this.lastReloadSuccessTimestamp.set(this.#clock.wallNow() / 1000)
    if (restartNeeded === undefined) return
    // Compared with what runs: a file that goes back to it clears the series.
    this.restartNeeded.reset()
    for (const field of restartNeeded) this.restartNeeded.set({ field }, 1)
  }
}

const MAX_COUNTED = 4096

type EdgeTally = Tally<'frontend' | 'backend' | 'status_class' | 'code'> & { readonly duration: HistogramTally<'frontend' | 'backend' | 'status_class'> }

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx']
