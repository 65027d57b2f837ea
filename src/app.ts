import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { GatewayMetrics } from './admin/metrics.js'
import { adminPlugin, type ReloadResult } from './admin/plugin.js'
import { gatewayState, instanceState, type GatewayStatus } from './admin/state.js'
import type { GatewayConfig } from './config/types.js'
import { GatewayDispatcher } from './proxy/dispatcher.js'
import { requestIdOf } from './proxy/headers.js'
import { clientErrorOf, errorReply, writeRawReply } from './proxy/error-reply.js'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { ConfigError, ErrorCode, ProxyError, formatIssue, type GatewayError } from './errors.js'
import { ResolverCaches } from './upstream/resolver-caches.js'
import { AccessLog, accessRecordOf } from './proxy/access-log.js'
import { proxyPlugin, refuseRequestUnderWay, sendError } from './proxy/plugin.js'
import { pathOf, type RoutingState } from './proxy/route-request.js'
import { handleUpgrades } from './proxy/upgrade.js'
import { Router } from './routing/router.js'
import { BackendRegistry } from './upstream/registry.js'
import { isoNow, systemClock, type Clock } from './util/clock.js'
import { systemRandom, type Random } from './util/random.js'
import { VERSION } from './util/version.js'

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
  readonly loadConfig?: () => Promise<GatewayConfig>
}

export type Gateway = {
  readonly publicApp: FastifyInstance
  readonly adminApp: FastifyInstance
  readonly dispatcher: GatewayDispatcher
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
  readonly setDraining: () => void
  readonly close: () => Promise<void>
}

/** Build the gateway for a configuration. Never listens: server.ts does. */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  // Every log line, run or demo: ISO 8601 times and level names, what people and log shippers read without a table.
  const logger = deps.logger === undefined || deps.logger === false
    ? false
    : { ...(typeof deps.logger === 'object' ? deps.logger : {}), timestamp: () => `,"time":"${isoNow(clock)}"`, formatters: { level: (label: string) => ({ level: label }) } }
  const publicApp = Fastify({
    logger,
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
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      // The client reset or ended its connection mid-request: nobody to answer (a request under way logs 499).
      if (error.code === 'ECONNRESET' || error.code === 'HPE_INVALID_EOF_STATE') {
        socket.destroy()
        return
      }
      const refusal = clientErrorOf(error.code)
      if (refuseRequestUnderWay(socket, refusal)) return
      refuseRaw(socket, undefined, refusal)
    }
  })
  applyClientLimits(publicApp, config)
  const adminApp = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) })

  let state: RoutingState
  const metrics = new GatewayMetrics(() => state.registry.all(), (backend, instance) => instanceState(backend, instance, clock.now()), { version: VERSION, clock })
  const onError = (error: unknown): void => { publicApp.log.error({ err: error }, 'discovery failed unexpectedly') }
  // app.ts owns the resolver caches across reloads: unchanged resolvers keep theirs.
  let caches = new ResolverCaches(config.resolvers, { clock, random, dnsObserver: metrics.dnsObserver, onCacheRead: metrics.onCacheRead, onError })
  const makeRegistry = (next: GatewayConfig, previous?: BackendRegistry): BackendRegistry => new BackendRegistry(next, {
    clock,
    random,
    caches,
    // Backends of the same name keep their health (ejections, checks, in-flight counts).
    healthOf: (name) => previous?.all().find((backend) => backend.name === name)?.health,
    dnsObserver: metrics.dnsObserver,
    events: {
      instanceEjected: metrics.backendEvents.instanceEjected,
      setChanged: () => deps.onSetChanged?.(),
      activeCheckChanged: (backend, instance, isFailing) => {
        publicApp.log[isFailing ? 'warn' : 'info']({ backend, instance: instance.key }, isFailing ? 'instance failing its health check: taken out' : 'instance passing its health check again')
      }
    },
    onCacheRead: metrics.onCacheRead,
    onError
  })
  state = { config, router: new Router(config.frontends), registry: makeRegistry(config) }
  const dispatcher = new GatewayDispatcher(metrics.dispatcherEvents, clock)
  let reloads: Promise<ReloadResult> = Promise.resolve({ ok: true, summary: '' })
  const status = { isStarted: false, isDraining: false, loadedAt: isoNow(clock), lastReload: undefined as GatewayStatus['lastReload'] }

  const accessLog = new AccessLog(config.accessLog.format, publicApp.log, clock)
  const log = accessLog
  /** A request answered on the raw socket (Node could not parse it, or CONNECT): same JSON shape, one access-log line. */
  const refuseRaw = (socket: Duplex, request: IncomingMessage | undefined, error: GatewayError): void => {
    const requestId = requestIdOf(request?.headers['x-request-id'])
    const { status } = errorReply(error)
    writeRawReply(socket, requestId, errorReply(error))
    metrics.requestRefused({ frontend: undefined, backend: undefined, backendName: undefined, status, durationSeconds: 0 })
    const peer = (socket as { remoteAddress?: string }).remoteAddress ?? ''
    log.record(accessRecordOf(request, { requestId, clientIp: peer, status, durationMs: 0, error: error.code, errorDetail: error.message }))
  }
  // srvgate is not a forward proxy: CONNECT gets 405 in the documented shape (Node would drop the socket).
  publicApp.server.on('connect', (request: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => {})
    refuseRaw(socket, request, new ProxyError(ErrorCode.METHOD_NOT_ALLOWED, 'CONNECT: srvgate is not a forward proxy'))
  })
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

  /** The reload path, one straight line: load, build and warm beside, swap, record. */
  const loadAndApply = async (): Promise<ReloadResult> => {
    if (deps.loadConfig === undefined) return { ok: false, errors: ['this gateway was not started from a file'] }
    let next: GatewayConfig
    try {
      next = await deps.loadConfig()
    } catch (error) {
      return { ok: false, errors: error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message] }
    }
    const nextCaches = caches.next(next.resolvers)
    const previousCaches = caches
    caches = nextCaches
    const candidate: RoutingState = { config: next, router: new Router(next.frontends), registry: makeRegistry(next, state.registry) }
    try {
      await candidate.registry.start()
    } catch (error) {
      candidate.registry.stop()
      caches = previousCaches
      return { ok: false, errors: [(error as Error).message] }
    }
    const previous = state
    state = candidate
    previous.registry.stop()
    applyClientLimits(publicApp, next)
    log.format = next.accessLog.format
    status.loadedAt = isoNow(clock)
    status.lastReload = { at: status.loadedAt, result: 'ok' }
    metrics.reloaded(true)
    deps.onSetChanged?.()
    // Listeners are bound once: compared with what runs, not with the last file read.
    const ignored = changedListeners(config, next)
    const summary = `${next.frontends.length} frontends, ${next.backends.size} backends`
    return { ok: true, summary: ignored.length === 0 ? summary : `${summary}; restart to apply ${ignored.join(', ')}` }
  }

  const gateway: Gateway = {
    publicApp,
    adminApp,
    dispatcher,
    metrics,
    accessLog,
    get state () { return state },
    get isReady () { return status.isStarted && !status.isDraining },
    get isDraining () { return status.isDraining },
    start: async () => {
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
        publicApp.log.error({ errors: result.errors }, 'reload failed; the previous configuration stays in use')
      } else {
        publicApp.log.info({ summary: result.summary }, 'configuration reloaded')
      }
      return result
    },
    setDraining: () => { status.isDraining = true },
    close: async () => {
      await publicApp.close()
      await adminApp.close()
      state.registry.stop()
      await dispatcher.close()
    }
  }
  await publicApp.register(proxyPlugin, { state: () => state, dispatcher, accessLog, clock, onStarted: metrics.requestStarted, onFinished: metrics.requestFinished, isDraining: () => status.isDraining })
  handleUpgrades(publicApp.server, { state: () => state, dispatcher, log: publicApp.log, accessLog, clock, onFinished: metrics.requestRefused })
  await adminApp.register(adminPlugin, {
    token: config.adminToken,
    listenHost: config.listen.admin.host,
    metrics,
    isReady: () => gateway.isReady,
    state: () => gatewayState(state.config, state, {
      isReady: gateway.isReady,
      isDraining: status.isDraining,
      configPath: deps.configPath,
      loadedAt: status.loadedAt,
      lastReload: status.lastReload
    }, clock, { byBackend: metrics.requestsByBackend, dnsQueries: metrics.dnsQueryCount }),
    reload: gateway.reload
  })
  return gateway
}

/** Settings bound once at start; a reload that changes them says so instead of half-applying. */
function changedListeners (running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = []
  if (running.listen.http.label !== next.listen.http.label) changed.push('listen.http')
  if (running.listen.admin.label !== next.listen.admin.label) changed.push('listen.admin')
  if (running.adminToken !== next.adminToken) changed.push('admin.token')
  if (running.statePath !== next.statePath) changed.push('statePath')
  if (running.client.maxHeaderBytes !== next.client.maxHeaderBytes) changed.push('client.maxHeaderBytes')
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
