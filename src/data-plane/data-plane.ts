import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { GatewayMetrics } from '../admin/metrics.js'
import type { GatewayConfig } from '../config/types.js'
import type { Instance } from '../discovery/instance-set.js'
import { ClientConnections, defaultMaxConnections } from '../edge/client-connections.js'
import { IdleConnections } from '../edge/idle-connections.js'
import { ConfigError, ErrorCode, ProxyError } from '../errors.js'
import { readUsersFiles, type UsersTable } from '../config/users-file.js'
import { BasicAuth } from '../policy/basic-auth.js'
import { ForwardAuth } from '../policy/forward-auth.js'
import { RateLimits, type AskTokens, type StoreFailure } from '../policy/rate-limits.js'
import { FrontendGate } from '../proxy/frontend-gate.js'
import { pinoBindings, stdoutLines, type Log } from '../log/process-log.js'
import { AccessLog } from '../proxy/access-log.js'
import { BodyBudget } from '../proxy/body-buffer.js'
import { UpstreamPools } from '../proxy/upstream-pools.js'
import { RequestEnd } from '../proxy/request-end.js'
import { clientErrorOf } from '../proxy/error-reply.js'
import { isProxiedMethod, proxyPlugin } from '../proxy/plugin.js'
import type { RoutingState } from '../proxy/route-request.js'
import { handleUpgrades } from '../proxy/upgrade.js'
import { AcmeAnswers, type ChallengeLookup, type ChallengeSet } from '../tls/acme-answers.js'
import { CertificateStore, type IssuedPem, type ServedCertificate } from '../tls/certificates.js'
import { TlsListener } from '../tls/listener.js'
import { H2cListener } from '../edge/h2c-listener.js'
import { departedOrigins } from '../upstream/departed.js'
import { within, type Clock } from '../util/clock.js'
import { redactedUrl } from '../util/redacted-url.js'
import type { Tracing } from '../tracing/tracing.js'
import { onClientError, publicApp, applyClientLimits } from './public-app.js'

export type DataPlaneDeps = {
  readonly clock: Clock
  /** srvgate's own lines (listening, draining). */
  readonly log: Log
  /** The logger request.log children come from; undefined: logging off. */
  readonly requestLog: Log | undefined
  readonly metrics: GatewayMetrics
  /** The routing state requests run against: read once per request, replaced whole by a reload. */
  readonly routing: () => RoutingState
  /** tls.acme.onDemand: ask the control plane for a certificate for a name no certificate carries; true once served. */
  readonly wantCertificate?: (name: string) => Promise<boolean>
  /** tls.acme.storage.redis: a challenge this process does not hold, asked of the control plane. */
  readonly findChallenge?: ChallengeLookup
  /** frontends' rateLimit: tokens from the control plane's buckets (one limit for every worker); undefined: no rate limits here. */
  readonly askTokens?: AskTokens
}

/** What a reload reads for the data plane before anything switches: the HTTPS listener's certificates, and basicAuth's users files. */
export type DataCandidate = { readonly certificates: CertificateStore | undefined, readonly users: ReadonlyMap<string, UsersTable> }

/**
 * The data plane's composition root: the listeners (plain HTTP through
 * fastify, HTTPS and HTTP/2 through the TLS listener into the same fastify),
 * the request path (proxy plugin, upgrades, refusals), the pools to
 * instances, and the limits on client connections and bodies. It owns no
 * discovery and no health: it reads the control plane's facts through
 * `routing()` (the same process's registry, or a worker's view of the
 * primary's) and is told of each reload's commit.
 */
export class DataPlane {
  readonly app: FastifyInstance
  readonly tlsListener: TlsListener | undefined
  /** HTTP/2 with prior knowledge on listen.http (listen.h2c). */
  readonly h2c: H2cListener | undefined
  readonly pools: UpstreamPools
  /** Where every request ends, proxied or refused: its metrics and its access record. */
  readonly ends: RequestEnd
  readonly accessLog: AccessLog
  readonly log: Log
  readonly metrics: GatewayMetrics
  readonly #deps: DataPlaneDeps
  readonly #idle: IdleConnections
  /** Request bodies received whole before an instance is asked, within client.bufferTotalBytes. */
  readonly #bodies = new BodyBudget()
  /** tls.acme's challenges under way (http-01 here, tls-alpn-01 in the TLS listener), from the control plane. */
  readonly #acme: AcmeAnswers
  /** tls.acme's certificates, from the control plane: every store this plane serves has them after its files. */
  #issued: readonly IssuedPem[] = []
  readonly #parsedIssued = new Map<string, ServedCertificate>()
  #client: GatewayConfig['client']
  #isDraining = false
  /** Spans of this process's requests (tracing: bound at start, as the listeners). */
  readonly #tracing: Tracing | undefined
  /** Frontends' access and rate-limit policies: their caches and connections outlive a reload. */
  readonly #gate: FrontendGate

  static async create (config: GatewayConfig, deps: DataPlaneDeps): Promise<DataPlane> {
    // Certificates are read before anything is built: a bad file fails the start with nothing open.
    const store = config.tls === undefined || config.listen.https === undefined ? undefined : await CertificateStore.load(config.tls, deps.clock.wallNow())
    const users = await usersOf(config)
    // OpenTelemetry's modules (~25 MB of RSS a process) are loaded only where tracing is configured.
    const tracing = config.tracing === undefined ? undefined : await startTracing(config.tracing, deps)
    const plane = new DataPlane(config, deps, store, tracing, users)
    await plane.#registerRequestPath()
    return plane
  }

  private constructor (config: GatewayConfig, deps: DataPlaneDeps, store: CertificateStore | undefined, tracing: Tracing | undefined, users: ReadonlyMap<string, UsersTable>) {
    const { clock, metrics } = deps
    this.#deps = deps
    metrics.instances.isEnabled = config.metrics.perInstance
    this.#gate = new FrontendGate(new BasicAuth(users), new ForwardAuth(clock), deps.askTokens === undefined ? undefined : new RateLimits(deps.askTokens, clock, storeFailures(deps)))
    this.#gate.rateLimits?.warm(config.frontends)
    // Shared storage: a CA's validation may reach this replica for another one's order.
    this.#acme = new AcmeAnswers(config.tls?.acme?.storage.kind === 'redis' ? deps.findChallenge : undefined)
    this.log = deps.log
    this.metrics = metrics
    // Access lines go to stdout batched, with the logger's base fields (pid, hostname) written by srvgate itself.
    this.accessLog = new AccessLog(config.accessLog, deps.log, clock, (line) => { stdoutLines().push(line) }, pinoBindings(deps.log))
    const ends = new RequestEnd(this.accessLog, metrics, clock)
    this.ends = ends
    this.app = publicApp(config, deps.requestLog, ends)
    this.pools = new UpstreamPools(metrics.dispatcherEvents, clock)
    this.#tracing = tracing
    this.#client = config.client
    // The limits of the configuration running now: replaced at each commit.
    const limits = (): GatewayConfig['client'] => this.#client
    // Every client connection of this process, plain and TLS, counted against client.maxConnections at accept.
    const connections = new ClientConnections(() => ({
      maxConnections: limits().maxConnections ?? defaultMaxConnections(),
      maxConnectionsPerIp: limits().maxConnectionsPerIp
    }), (listener, reason) => { metrics.clientConnectionsRefused.inc({ listener, reason }) })
    // Before Node's own listener: a refused connection is gone before a parser is made for it.
    this.app.server.prependListener('connection', (socket: Socket) => { connections.admit(socket, 'http') })
    // Keep-alive connections between requests: bounded from the end of the last answer, CRLFs or not
    // (told by proxy/plugin.ts as each request starts and ends: no listener of its own per request).
    this.#idle = new IdleConnections(clock, () => limits().keepAliveTimeoutMs + limits().headersTimeoutMs)
    const onConnect = (request: IncomingMessage, socket: Duplex): void => {
      socket.on('error', () => {})
      ends.refuseRaw(socket, request, connectRefusal())
    }
    this.app.server.on('connect', onConnect)
    const app = this.app
    const onRequest = (request: Http2ServerRequest, response: Http2ServerResponse): void => {
      // HTTP/1.1's parser refuses a method it does not know (400); HTTP/2 hands any token over,
      // and fastify's router would fail it as an error of its own.
      if (request.httpVersionMajor === 2 && !isProxiedMethod(request.method)) ends.refuseStream(request, response, new ProxyError(ErrorCode.REQUEST_MALFORMED, `unknown method ${JSON.stringify(request.method)}`))
      // fastify is typed for the plain server it listens on (IncomingMessage); its router takes Node's
      // HTTP/2 compatibility request and response all the same (method, url, headers, the response API).
      else Reflect.apply(app.routing, app, [request, response])
    }
    // h2c on the plain listener routes into the same fastify; its connections were admitted above.
    this.h2c = config.listen.http === undefined || !config.listen.h2c ? undefined : new H2cListener(this.app.server, { onRequest, limits, clock })
    // The HTTPS listener (HTTP/2 and HTTP/1.1) hands its requests to the same fastify instance: one
    // set of hooks and routes for both listeners.
    this.tlsListener = store === undefined || config.tls === undefined
      ? undefined
      : new TlsListener({
        store,
        tls: config.tls,
        onRequest,
        limits,
        clock,
        connections,
        headTimedOut: (socket, hasRequestBytes) => {
          // As on plain HTTP: a connection that sent no request byte after its handshake is closed silently.
          if (hasRequestBytes) ends.refuseRaw(socket, undefined, clientErrorOf('ERR_HTTP_REQUEST_HEADERS_TIMEOUT'))
          else socket.destroy()
        },
        events: metrics.tlsEvents,
        // Bound at start, as the listener is: a CA's tls-alpn-01 handshakes go to the challenge server.
        ...(config.tls.acme === undefined ? {} : { acme: this.#acme }),
        ...(config.tls.acme?.onDemand === undefined || deps.wantCertificate === undefined ? {} : { onDemand: { waitMs: config.tls.acme.onDemand.waitMs, want: deps.wantCertificate } })
      })
    this.tlsListener?.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      // A handshake that failed or ran out of time (no certificate for the name, a client that gave up,
      // client.headersTimeout): tlsClientError counted it, and there is no request to answer.
      const code = String(error.code)
      if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || (socket as { encrypted?: boolean }).encrypted !== true) {
        socket.destroy()
        return
      }
      onClientError(error, socket, ends)
    })
    // CONNECT over HTTP/2 (RFC 9113 §8.5) comes as a request and its response: a 2xx would mean "tunnel open".
    this.h2c?.server.on('connect', (request: Http2ServerRequest, response: Http2ServerResponse) => { ends.refuseStream(request, response, connectRefusal()) })
    this.tlsListener?.server.on('connect', (request: IncomingMessage | Http2ServerRequest, socketOrResponse: Duplex | Http2ServerResponse) => {
      if (request.httpVersionMajor === 2) ends.refuseStream(request as Http2ServerRequest, socketOrResponse as Http2ServerResponse, connectRefusal())
      else onConnect(request as IncomingMessage, socketOrResponse as Duplex)
    })
    metrics.countTraffic({ upstreamConnections: () => this.pools.openConnections, clientConnections: () => connections.open, bufferedBodyBytes: () => this.#bodies.reserved })
  }

  async #registerRequestPath (): Promise<void> {
    const { clock, routing } = this.#deps
    const gate = this.#gate
    await this.app.register(proxyPlugin, { state: routing, pools: this.pools, ends: this.ends, clock, isDraining: () => this.#isDraining, bodies: this.#bodies, idle: this.#idle, acme: this.#acme, tracing: this.#tracing, gate })
    const upgrades = { state: routing, pools: this.pools, log: this.log, ends: this.ends, tracing: this.#tracing, gate }
    handleUpgrades(this.app.server, upgrades)
    // WebSockets over HTTP/1.1 on the HTTPS listener too.
    if (this.tlsListener !== undefined) handleUpgrades(this.tlsListener.server, upgrades)
  }

  get isDraining (): boolean { return this.#isDraining }

  /** The HTTPS listener routes through fastify without fastify listening on it. */
  async start (): Promise<void> { await this.app.ready() }

  /** Read what the next configuration needs here; a broken or mismatched certificate, or a users file srvgate cannot use, refuses the reload. */
  async prepare (next: GatewayConfig): Promise<DataCandidate> {
    const certificates = this.tlsListener === undefined || next.tls === undefined ? undefined : await CertificateStore.load(next.tls, this.#deps.clock.wallNow())
    return { certificates, users: await usersOf(next) }
  }

  /** The new configuration runs (the routing state has switched already): what the listeners take on reload. */
  commit (next: GatewayConfig, candidate: DataCandidate): void {
    if (candidate.certificates !== undefined) this.tlsListener?.use(candidate.certificates.withIssued(this.#issued, this.#parsedIssued))
    // The same tick as the routing state's switch: no request sees one without the other.
    this.#gate.basicAuth.use(candidate.users)
    this.#gate.rateLimits?.warm(next.frontends)
    if (next.metrics.perInstance) this.metrics.instances.isEnabled = true
    else if (this.metrics.instances.isEnabled) this.metrics.instances.disable()
    this.#client = next.client
    applyClientLimits(this.app, next)
    this.tlsListener?.applyLimits(next.client)
    this.h2c?.applyLimits(next.client)
    this.accessLog.config = next.accessLog
  }

  /** tls.acme's certificates as the control plane holds them now: served from the next handshake, after the files'. */
  useIssued (issued: readonly IssuedPem[]): void {
    this.#issued = issued
    const listener = this.tlsListener
    if (listener === undefined) return
    // Parsed once each: one that left the set is forgotten.
    const current = new Set(issued.map((pem) => pem.cert))
    for (const cert of this.#parsedIssued.keys()) if (!current.has(cert)) this.#parsedIssued.delete(cert)
    listener.use(listener.store.withIssued(issued, this.#parsedIssued))
  }

  /** tls.acme's challenges under way: answered from now on. */
  useChallenges (set: ChallengeSet): void { this.#acme.use(set) }

  /** The control plane's session ticket key: a ticket this process issues resumes on every other data plane. */
  useSessionTicketKey (key: Buffer): void { this.tlsListener?.useTicketKey(key) }

  /** Instances that left DNS and no backend lists any more: their pools close once their requests finish. */
  retireDeparted (removed: readonly Instance[]): void {
    if (removed.length === 0) return
    const gone = departedOrigins(removed, this.#deps.routing().registry.all())
    if (gone.size === 0) return
    this.pools.retire(gone)
    // Their per-instance series go with them (metrics.perInstance): churn does not pile series up.
    this.metrics.instances.forget(removed.filter((instance) => gone.has(instance.origin)))
  }

  /** While draining, answers carry `Connection: close` and readiness fails. */
  setDraining (): void { this.#isDraining = true }

  async close (): Promise<void> {
    this.#idle.stop()
    await this.tlsListener?.close()
    this.h2c?.close()
    await this.app.close()
    await this.pools.close()
    await this.#gate.close()
    // The spans of the last requests go out, for as long as the collector answers within the drain's bound.
    const tracing = this.#tracing
    if (tracing !== undefined) await within(this.#deps.clock, tracing.shutdown().catch(() => {}), TRACING_SHUTDOWN_MS, { unref: true })
  }
}

/** The htpasswd tables of `config`'s basicAuth policies; a file srvgate cannot use is a configuration error. */
async function usersOf (config: GatewayConfig): Promise<ReadonlyMap<string, UsersTable>> {
  const users = await readUsersFiles(config)
  if (Array.isArray(users)) throw new ConfigError(ErrorCode.CONFIG_INVALID, users)
  return users
}

/** rateLimit.store.redis failing: counted, and logged at once then at most once a minute (a Redis that stays down must not fill the log). */
function storeFailures (deps: DataPlaneDeps): StoreFailure {
  let lastWarnedMs: number | undefined
  let since = 0
  return (url, error) => {
    deps.metrics.rateLimitStoreFailures.inc()
    since++
    const now = deps.clock.now()
    if (lastWarnedMs !== undefined && now - lastWarnedMs < 60_000) return
    lastWarnedMs = now
    deps.log.warn({ store: redactedUrl(url, 'redis'), requests: since, err: error.message }, 'rateLimit: Redis could not decide; this gateway\'s own limit decides until it answers again')
    since = 0
  }
}

/** This process's tracing, its drops counted and logged. */
async function startTracing (config: NonNullable<GatewayConfig['tracing']>, deps: DataPlaneDeps): Promise<Tracing> {
  const [{ Tracing }, { warnOfDrops }] = await Promise.all([import('../tracing/tracing.js'), import('../tracing/drop-warnings.js')])
  return new Tracing(config, warnOfDrops(deps.metrics.tracing.events, deps.log, deps.clock, config.endpoint), deps.clock)
}

/** How long a closing data plane waits for its last spans to reach the collector. */
const TRACING_SHUTDOWN_MS = 3000

/** srvgate is not a forward proxy: CONNECT gets 405 in the documented shape (Node would drop the socket). */
function connectRefusal (): ProxyError {
  return new ProxyError(ErrorCode.METHOD_NOT_ALLOWED, 'CONNECT: srvgate is not a forward proxy')
}
