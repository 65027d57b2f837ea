import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { GatewayMetrics } from './admin/metrics.js'
import { adminPlugin, type ReloadResult } from './admin/plugin.js'
import { gatewayState, instanceState, type GatewayStatus } from './admin/state.js'
import type { GatewayConfig } from './config/types.js'
import type { LoadedConfig } from './config/load.js'
import type { Backend } from './upstream/backend.js'
import type { Instance } from './discovery/instance-set.js'
import { UpstreamPools } from './proxy/upstream-pools.js'
import { requestIdOf } from './proxy/headers.js'
import { clientErrorOf, isHeadTimeout } from './proxy/error-reply.js'
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ConfigError, ErrorCode, ProxyError, formatIssue, type GatewayError } from './errors.js'
import { ResolverCaches } from './upstream/resolver-caches.js'
import { AccessLog } from './proxy/access-log.js'
import { RequestEnd, isProxiedMethod, proxyPlugin, refuseRequestUnderWay, sendError } from './proxy/plugin.js'
import { pathOf, type RoutingState } from './proxy/route-request.js'
import { handleUpgrades } from './proxy/upgrade.js'
import { Router } from './routing/router.js'
import { BackendRegistry, type RemoteView } from './upstream/registry.js'
import { dateAt, isoNow, systemClock, type Clock } from './util/clock.js'
import { systemRandom, type Random } from './util/random.js'
import { VERSION } from './util/version.js'
import { processLogger, requestLogger, pinoBindings, stdoutLines } from './log/process-log.js'
import { CertificateStore } from './tls/certificates.js'
import { TlsListener } from './tls/listener.js'
import { ClientConnections, defaultMaxConnections } from './edge/client-connections.js'
import { IdleConnections } from './edge/idle-connections.js'
import { BodyBudget } from './proxy/body-buffer.js'

export type GatewayDeps = {
  readonly clock?: Clock
  readonly random?: Random
  /** fastify's logger option (pino); false in tests that read no logs. */
  readonly logger?: FastifyServerOptions['logger']
  /** Where the configuration came from, for /admin/state. */
  readonly configPath?: string
  /** Called when a backend's instance set changes, and after a reload (the state file is written). */
  readonly onSetChanged?: () => void
  /**
   * Reads the configuration again (server.ts: the file, with nameserver host
   * names resolved anew). Without it, a reload is refused.
   */
  readonly loadConfig?: () => Promise<LoadedConfig>
  /** single (default): one process does everything; primary: no traffic, the workers' one discovery; worker: traffic only. */
  readonly role?: GatewayRole
  /** A cluster primary: the workers, told of every set and health change and taking part in every reload. */
  readonly workers?: WorkerPeers
  /** A cluster worker: instance sets and health come from the primary (one view per configuration generation). */
  readonly remote?: (generation: number) => RemoteView
  /** The configuration generation to start with (a worker takes the primary's). */
  readonly generation?: number
}

export type GatewayRole = 'single' | 'primary' | 'worker'

/**
 * What a cluster primary asks of its workers (cluster/worker-pool.ts). A
 * reload is two-phase: every worker prepares the new generation beside the
 * old one, then all commit, or all abort.
 */
export type WorkerPeers = {
  /** Resolves when every worker has the generation ready; rejects (after aborting it everywhere) otherwise. */
  readonly prepare: (generation: number, text: string, state: RoutingState) => Promise<void>
  readonly commit: (generation: number) => void
  readonly discoveryChanged: (generation: number, backend: Backend) => void
  readonly healthChanged: (generation: number, backend: Backend, key: string) => void
  /** Every running worker's figures, for /metrics and /admin/state (a worker that does not answer in time is left out). */
  readonly stats: () => Promise<WorkerStats[]>
  readonly status: () => WorkersStatus
}

/** Per-worker figures the primary gathers (cluster/protocol.ts carries them). */
export type WorkerStats = {
  /** prom-client's `getMetricsAsJSON()`: aggregated by prom-client in the primary. */
  readonly metrics: unknown[]
  readonly byBackend: ReadonlyArray<readonly [string, { readonly requests: number, readonly errors: number }]>
  /** In-flight requests by backend name and instance key (only the non-zero ones). */
  readonly inFlight: ReadonlyArray<readonly [string, string, number]>
}

export type WorkersStatus = { readonly configured: number, readonly running: number, readonly replaced: number, readonly pids: readonly number[] }

/** A configuration built and warmed beside the running one, not yet serving. */
export type Candidate = {
  readonly state: RoutingState
  readonly caches: ResolverCaches
  readonly previousCaches: ResolverCaches
  /** The certificates read for it (with an HTTPS listener). */
  readonly certificates: CertificateStore | undefined
}

export type Gateway = {
  readonly publicApp: FastifyInstance
  /** The process's logger (pino JSON lines on stdout; silent when logging is off). */
  readonly log: FastifyBaseLogger
  /** The HTTPS listener, when listen.https is set (server.ts and workers listen on it). */
  readonly tlsListener: TlsListener | undefined
  readonly adminApp: FastifyInstance
  readonly dispatcher: UpstreamPools
  readonly metrics: GatewayMetrics
  readonly accessLog: AccessLog
  /** The routing state requests run against; replaced whole by `reload`. */
  readonly state: RoutingState
  readonly isReady: boolean
  readonly isDraining: boolean
  /** Warm every backend (first resolution done or failed into a known state). */
  readonly start: () => Promise<void>
  /**
   * SIGHUP, POST /admin/reload, --watch: load the configuration again, build
   * and warm it beside the old one, swap in one step. One at a time; a failure
   * keeps the old configuration and is recorded.
   */
  readonly reload: () => Promise<ReloadResult>
  /** The steps of a reload, for a cluster worker (the primary runs them across processes). */
  readonly prepare: (next: GatewayConfig, generation: number) => Promise<Candidate>
  readonly commit: (candidate: Candidate) => string
  readonly abort: (candidate: Candidate) => void
  readonly setDraining: () => void
  /** Every configured listener answers (server.ts: http, https, admin, the DNS face; a worker: its own). Ready needs it. */
  readonly setListening: () => void
  readonly close: () => Promise<void>
}

/** Build the gateway for a configuration. Never listens: server.ts does. */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  // Every log line, run or demo: ISO 8601 times and level names, what people and log shippers read without a table.
  const pinoLog = deps.logger === undefined || deps.logger === false ? undefined : processLogger(deps.logger, clock)
  const publicApp = Fastify({
    // fastify gets no logger of its own: with one it makes a pino child and two response
    // listeners for every request (~3 µs, docs/BENCHMARKS.md). request.log and reply.log,
    // where fastify reports what goes wrong with a request, come from RequestLogger instead.
    logger: false,
    ...(pinoLog === undefined ? {} : { childLoggerFactory: (_none: FastifyBaseLogger, bindings: Record<string, unknown>) => requestLogger(pinoLog, bindings) }),
    // One access-log line per request comes from proxy/plugin.ts instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    // Bodies stream through; no limit applies to what fastify never buffers.
    bodyLimit: 1024 * 1024,
    // While draining, requests on open connections are still served (with Connection: close).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: config.client.keepAliveTimeoutMs,
    // Node checks headersTimeout on this period (30 s by default): a 10 s limit would be up to 40 s.
    // requireHostHeader off: a request without Host reaches routing and gets the documented 400 (Node's own has no JSON, no x-request-id).
    http: { maxHeaderSize: config.client.maxHeaderBytes, connectionsCheckingInterval: 1000, requireHostHeader: false },
    // Requests Node cannot parse still get a JSON answer with an x-request-id and an access-log line (spec §3).
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => { onClientError(error, socket) }
  })
  /** srvgate's own lines (discovery, health, reloads, certificates, listening, draining). */
  const log: FastifyBaseLogger = pinoLog ?? publicApp.log
  const onClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
    // The client reset or ended its connection mid-request: nobody to answer (a request under way logs 499).
    if (error.code === 'ECONNRESET' || error.code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy()
      return
    }
    // A connection that never sent a byte (a browser's preconnect, an L4 health check) is closed
    // without an answer or a log line, as HAProxy's `option http-ignore-probes` does.
    if (isHeadTimeout(error.code) && (socket as { bytesRead?: number }).bytesRead === 0) {
      socket.destroy()
      return
    }
    const refusal = clientErrorOf(error.code)
    if (refuseRequestUnderWay(socket, refusal)) return
    refuseRaw(socket, undefined, refusal)
  }
  applyClientLimits(publicApp, config)
  const adminApp = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) })

  let state: RoutingState
  const role = deps.role ?? 'single'
  const metrics = new GatewayMetrics(() => state.registry.all(), (backend, instance) => instanceState(backend, instance, clock.now()), { version: VERSION, clock, role, certificates: () => tlsListener?.store.certificates ?? [], upstreamConnections: () => dispatcher.openConnections, clientConnections: () => clientConnections.open, bufferedBodyBytes: () => bodies.reserved })
  const onError = (error: unknown): void => { log.error({ err: error }, 'discovery failed unexpectedly') }
  // app.ts owns the resolver caches across reloads: unchanged resolvers keep theirs.
  let caches = new ResolverCaches(config.resolvers, { clock, random, dnsObserver: metrics.dnsObserver, onCacheRead: metrics.onCacheRead, onError })
  const workers = deps.workers
  const makeRegistry = (next: GatewayConfig, generation: number, nextCaches: ResolverCaches, previous?: BackendRegistry): BackendRegistry => new BackendRegistry(next, {
    clock,
    random,
    caches: nextCaches,
    // Backends of the same name keep their health (ejections, checks, in-flight counts).
    healthOf: (name) => previous?.named(name)?.health,
    // Environments alive before a reload are made again without spending templatedBackends.newPerSecond.
    wasAlive: (name) => previous?.named(name) !== undefined,
    onTemplateRefused: metrics.templateRefused,
    dnsObserver: metrics.dnsObserver,
    events: {
      instanceEjected: metrics.backendEvents.instanceEjected,
      setChanged: (_label, _added, removed) => {
        deps.onSetChanged?.()
        retireDeparted(removed)
      },
      activeCheckChanged: (backend, instance, isFailing) => {
        log[isFailing ? 'warn' : 'info']({ backend, instance: instance.key }, isFailing ? 'instance failing its health check: taken out' : 'instance passing its health check again')
      },
      discoveryChanged: workers === undefined ? undefined : (backend) => { workers.discoveryChanged(generation, backend) },
      healthChanged: workers === undefined ? undefined : (backend, key) => { workers.healthChanged(generation, backend, key) }
    },
    onCacheRead: metrics.onCacheRead,
    onError,
    remote: deps.remote?.(generation)
  })
  /** Instances that left DNS and no backend lists any more: their pools close once their requests finish. */
  const retireDeparted = (removed: readonly Instance[]): void => {
    if (removed.length === 0) return
    const backends = state.registry.all()
    const gone = new Set<string>()
    for (const instance of removed) {
      if (backends.some((backend) => backend.set.has(instance.key))) continue
      gone.add(instance.origin)
      gone.add(instance.tlsOrigin)
    }
    if (gone.size > 0) dispatcher.retire(gone)
  }
  let generation = deps.generation ?? 0
  state = { config, generation, router: new Router(config.frontends), registry: makeRegistry(config, generation, caches) }
  const dispatcher = new UpstreamPools(metrics.dispatcherEvents, clock)
  let reloads: Promise<ReloadResult> = Promise.resolve({ ok: true, summary: '' })
  const status = { isStarted: false, isListening: false, isDraining: false, loadedAt: isoNow(clock), lastReload: undefined as GatewayStatus['lastReload'] }

  const accessLog = new AccessLog(config.accessLog.format, log, clock, (line) => { stdoutLines().push(line) }, pinoBindings(log))
  /** A request answered on the raw socket (Node could not parse it, or CONNECT) or on an HTTP/2 stream that never reaches fastify: proxy/request-end.ts. */
  const requestEnd = new RequestEnd(accessLog, metrics, clock)
  const refuseRaw = (socket: Duplex, request: IncomingMessage | undefined, error: GatewayError): void => { requestEnd.refuseRaw(socket, request, error) }
  const refuseStream = (request: Http2ServerRequest, response: Http2ServerResponse, error: GatewayError): void => { requestEnd.refuseStream(request, response, error) }
  const connectRefusal = (): ProxyError => new ProxyError(ErrorCode.METHOD_NOT_ALLOWED, 'CONNECT: srvgate is not a forward proxy')
  // srvgate is not a forward proxy: CONNECT gets 405 in the documented shape (Node would drop the socket).
  const onConnectMethod = (request: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => {})
    refuseRaw(socket, request, connectRefusal())
  }
  publicApp.server.on('connect', onConnectMethod)
  // Request bodies received whole before an instance is asked, within client.bufferTotalBytes.
  const bodies = new BodyBudget()
  // Every client connection of this process, plain and TLS, counted against client.maxConnections at accept.
  const clientConnections = new ClientConnections(() => ({
    maxConnections: state.config.client.maxConnections ?? defaultMaxConnections(),
    maxConnectionsPerIp: state.config.client.maxConnectionsPerIp
  }), (listener, reason) => { metrics.clientConnectionsRefused.inc({ listener, reason }) })
  // Before Node's own listener: a refused connection is gone before a parser is made for it.
  publicApp.server.prependListener('connection', (socket: Socket) => { clientConnections.admit(socket, 'http') })
  // Keep-alive connections between requests: bounded from the end of the last answer, CRLFs or not.
  const idleConnections = new IdleConnections(clock, () => state.config.client.keepAliveTimeoutMs + state.config.client.headersTimeoutMs)
  // (told by proxy/plugin.ts as each request starts and ends: no listener of its own per request)
  // The HTTPS listener (HTTP/2 and HTTP/1.1) hands its requests to the same fastify instance: one
  // set of hooks and routes for both listeners. Certificates are read here and on every reload.
  const tlsListener = config.tls === undefined || config.listen.https === undefined
    ? undefined
    : new TlsListener({
      store: await CertificateStore.load(config.tls, clock.wallNow()),
      tls: config.tls,
      onRequest: (request, response) => {
        // HTTP/1.1's parser refuses a method it does not know (400); HTTP/2 hands any token over,
        // and fastify's router would fail it as an error of its own.
        if (request.httpVersionMajor === 2 && !isProxiedMethod(request.method)) refuseStream(request, response, new ProxyError(ErrorCode.REQUEST_MALFORMED, `unknown method ${JSON.stringify(request.method)}`))
        else publicApp.routing(request as never, response as never)
      },
      limits: () => state.config.client,
      clock,
      connections: clientConnections,
      headTimedOut: (socket, hasRequestBytes) => {
        // As on plain HTTP: a connection that sent no request byte after its handshake is closed silently.
        if (hasRequestBytes) refuseRaw(socket, undefined, clientErrorOf('ERR_HTTP_REQUEST_HEADERS_TIMEOUT'))
        else socket.destroy()
      },
      events: metrics.tlsEvents
    })
  const warnExpiring = (store: CertificateStore): void => {
    for (const warning of store.warnings) log.warn({ path: warning.path }, `certificate: ${warning.message}`)
  }
  if (tlsListener !== undefined) {
    warnExpiring(tlsListener.store)
    tlsListener.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      // A handshake that failed or ran out of time (no certificate for the name, a client that gave up,
      // client.headersTimeout): tlsClientError counted it, and there is no request to answer.
      const code = String(error.code)
      if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || (socket as { encrypted?: boolean }).encrypted !== true) {
        socket.destroy()
        return
      }
      onClientError(error, socket)
    })
    // CONNECT over HTTP/2 (RFC 9113 §8.5) comes as a request and its response: a 2xx would mean "tunnel open".
    tlsListener.server.on('connect', (request: IncomingMessage | Http2ServerRequest, socketOrResponse: Duplex | Http2ServerResponse) => {
      if (request.httpVersionMajor === 2) refuseStream(request as Http2ServerRequest, socketOrResponse as Http2ServerResponse, connectRefusal())
      else onConnectMethod(request as IncomingMessage, socketOrResponse as Duplex)
    })
  }
  // What reaches fastify but no proxy route (a target fastify's router refuses) still gets the JSON shape.
  publicApp.setNotFoundHandler(async (request, reply) => {
    reply.header('x-request-id', request.id)
    return await sendError(reply, new ProxyError(ErrorCode.REQUEST_MALFORMED, `no route for target ${pathOf(request.url)}`))
  })
  publicApp.setErrorHandler(async (error, request, reply) => {
    reply.header('x-request-id', request.id)
    request.log.error({ err: error }, 'request failed unexpectedly')
    return await sendError(reply, new ProxyError(ErrorCode.UPSTREAM_ERROR, (error as Error).message, undefined, { cause: error }))
  })

  /** Build and warm `next` beside the running configuration; nothing changes for requests yet. */
  const prepare = async (next: GatewayConfig, nextGeneration: number): Promise<Candidate> => {
    const nextCaches = caches.next(next.resolvers)
    // New certificates are read first: a broken or mismatched file refuses the reload, the old ones keep serving.
    const certificates = tlsListener === undefined || next.tls === undefined ? undefined : await CertificateStore.load(next.tls, clock.wallNow())
    const candidate: RoutingState = { config: next, generation: nextGeneration, router: new Router(next.frontends), registry: makeRegistry(next, nextGeneration, nextCaches, state.registry) }
    try {
      await candidate.registry.start()
    } catch (error) {
      candidate.registry.stop()
      throw error
    }
    return { state: candidate, caches: nextCaches, previousCaches: caches, certificates }
  }
  const abort = (candidate: Candidate): void => { candidate.state.registry.stop() }
  /** Swap in one step; returns the summary. */
  const commit = (candidate: Candidate): string => {
    const next = candidate.state.config
    const previous = state
    state = candidate.state
    caches = candidate.caches
    generation = candidate.state.generation
    previous.registry.stop()
    if (candidate.certificates !== undefined) {
      tlsListener?.use(candidate.certificates)
      warnExpiring(candidate.certificates)
    }
    applyClientLimits(publicApp, next)
    tlsListener?.applyLimits(next.client)
    accessLog.format = next.accessLog.format
    status.loadedAt = isoNow(clock)
    status.lastReload = { at: status.loadedAt, result: 'ok' }
    metrics.reloaded(true)
    deps.onSetChanged?.()
    // Listeners are bound once: compared with what runs, not with the last file read.
    const ignored = changedListeners(config, next)
    const summary = `${next.frontends.length} frontends, ${next.backends.size} backends`
    return ignored.length === 0 ? summary : `${summary}; restart to apply ${ignored.join(', ')}`
  }

  /** The reload path, one straight line: load, build and warm beside (in every worker too), swap, record. */
  const loadAndApply = async (): Promise<ReloadResult> => {
    if (deps.loadConfig === undefined) return { ok: false, errors: ['this gateway was not started from a file'] }
    let loaded: LoadedConfig
    try {
      loaded = await deps.loadConfig()
    } catch (error) {
      return { ok: false, errors: error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message] }
    }
    let candidate: Candidate
    try {
      candidate = await prepare(loaded.config, generation + 1)
    } catch (error) {
      return { ok: false, errors: [(error as Error).message] }
    }
    if (workers !== undefined) {
      // Every worker builds the same text beside its running one, or none switches.
      try {
        await workers.prepare(candidate.state.generation, loaded.text, candidate.state)
      } catch (error) {
        abort(candidate)
        return { ok: false, errors: [(error as Error).message] }
      }
      workers.commit(candidate.state.generation)
    }
    return { ok: true, summary: commit(candidate) }
  }

  const gateway: Gateway = {
    publicApp,
    log,
    adminApp,
    dispatcher,
    metrics,
    accessLog,
    get state () { return state },
    // Ready once warm and every listener answers (a balancer that trusts readyz must find each one
    // up, the DNS face included), and, in a primary, while a worker serves traffic.
    get isReady () { return status.isStarted && status.isListening && !status.isDraining && (workers === undefined || workers.status().running > 0) },
    get isDraining () { return status.isDraining },
    tlsListener,
    start: async () => {
      // The HTTPS listener routes through fastify without fastify listening on it.
      await publicApp.ready()
      await state.registry.start()
      status.isStarted = true
    },
    reload: async () => {
      // One reload at a time: a burst of SIGHUPs applies in order, never two swaps racing.
      const run = reloads.then(async () => await loadAndApply())
      reloads = run.catch((error: unknown) => ({ ok: false, errors: [String(error)] }))
      const result = await run
      if (!result.ok) {
        status.lastReload = { at: isoNow(clock), result: 'error', error: result.errors.join('; ') }
        metrics.reloaded(false)
        log.error({ errors: result.errors }, 'reload failed; the previous configuration stays in use')
      } else {
        log.info({ summary: result.summary }, 'configuration reloaded')
      }
      return result
    },
    prepare,
    commit,
    abort,
    setDraining: () => { status.isDraining = true },
    setListening: () => { status.isListening = true },
    close: async () => {
      idleConnections.stop()
      await tlsListener?.close()
      await publicApp.close()
      await adminApp.close()
      state.registry.stop()
      await dispatcher.close()
    }
  }
  await publicApp.register(proxyPlugin, { state: () => state, pools: dispatcher, ends: requestEnd, clock, isDraining: () => status.isDraining, bodies, idle: idleConnections })
  const upgrades = { state: () => state, pools: dispatcher, log, ends: requestEnd }
  handleUpgrades(publicApp.server, upgrades)
  // WebSockets over HTTP/1.1 on the HTTPS listener too.
  if (tlsListener !== undefined) handleUpgrades(tlsListener.server, upgrades)
  await adminApp.register(adminPlugin, {
    token: config.adminToken,
    listenHost: config.listen.admin.host,
    allowedHosts: config.adminAllowedHosts,
    contentType: metrics.registry.contentType,
    // With workers: this process's registry and every worker's, aggregated by prom-client.
    exposition: async () => await metrics.exposition(workers === undefined ? undefined : (await workers.stats()).map((stats) => stats.metrics)),
    isReady: () => gateway.isReady,
    state: async () => {
      const stats = workers === undefined ? undefined : await workers.stats()
      return gatewayState(state.config, state, {
        isReady: gateway.isReady,
        isDraining: status.isDraining,
        configPath: deps.configPath,
        loadedAt: status.loadedAt,
        lastReload: status.lastReload,
        certificates: tlsListener?.store.certificates.map((certificate) => ({
          file: certificate.certPath,
          names: certificate.names,
          serial: certificate.serial,
          notAfter: dateAt(certificate.notAfterMs).toISOString(),
          daysLeft: Math.floor((certificate.notAfterMs - clock.wallNow()) / 86_400_000)
        })),
        workers: workers?.status()
      }, clock, stats === undefined
        ? { byBackend: metrics.requestsByBackend, dnsQueries: metrics.dnsQueryCount }
        : { byBackend: sumByBackend(stats), dnsQueries: metrics.dnsQueryCount, inFlight: inFlightOf(stats) })
    },
    reload: gateway.reload
  })
  return gateway
}

/** Requests per backend name, summed over the workers. */
function sumByBackend (stats: readonly WorkerStats[]): Map<string, { requests: number, errors: number }> {
  const sum = new Map<string, { requests: number, errors: number }>()
  for (const { byBackend } of stats) {
    for (const [name, counts] of byBackend) {
      const total = sum.get(name) ?? { requests: 0, errors: 0 }
      total.requests += counts.requests
      total.errors += counts.errors
      sum.set(name, total)
    }
  }
  return sum
}

/** In-flight requests by backend name, then instance key, summed over the workers. */
function inFlightOf (stats: readonly WorkerStats[]): Map<string, Map<string, number>> {
  const sum = new Map<string, Map<string, number>>()
  for (const { inFlight } of stats) {
    for (const [name, key, count] of inFlight) {
      const byKey = sum.get(name) ?? new Map<string, number>()
      byKey.set(key, (byKey.get(key) ?? 0) + count)
      sum.set(name, byKey)
    }
  }
  return sum
}

/** Settings bound once at start; a reload that changes them says so instead of half-applying. */
function changedListeners (running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = []
  if (running.listen.http?.label !== next.listen.http?.label) changed.push('listen.http')
  if (running.listen.https?.label !== next.listen.https?.label) changed.push('listen.https')
  if (running.listen.admin.label !== next.listen.admin.label) changed.push('listen.admin')
  if (running.adminToken !== next.adminToken) changed.push('admin.token')
  if ([...running.adminAllowedHosts].join() !== [...next.adminAllowedHosts].join()) changed.push('admin.allowedHosts')
  if (running.statePath !== next.statePath) changed.push('statePath')
  if (running.workers !== next.workers) changed.push('workers')
  if (running.client.maxHeaderBytes !== next.client.maxHeaderBytes) changed.push('client.maxHeaderBytes')
  const listeners = (config: GatewayConfig): string => config.dns?.listen.map((address) => address.label).join(',') ?? ''
  if (listeners(running) !== listeners(next)) changed.push('dns.listen')
  return changed
}

/** The limits a running listener can take on reload (maxHeaderBytes needs a restart). */
function applyClientLimits (app: FastifyInstance, config: GatewayConfig): void {
  const server = app.server
  server.headersTimeout = config.client.headersTimeoutMs
  server.keepAliveTimeout = config.client.keepAliveTimeoutMs
  // One more than the limit: routing sees a request that went over it (Node would cut silently).
  server.maxHeadersCount = config.client.maxHeaderCount + 1
}
