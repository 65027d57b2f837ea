import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { GatewayMetrics } from './admin/metrics.js'
import { adminPlugin, type ReloadResult } from './admin/plugin.js'
import { gatewayState, instanceState, type GatewayStatus } from './admin/state.js'
import type { GatewayConfig } from './config/types.js'
import { GatewayDispatcher } from './proxy/dispatcher.js'
import { requestIdOf } from './proxy/headers.js'
import { clientErrorReply, writeRawReply } from './proxy/error-reply.js'
import { randomUUID } from 'node:crypto'
import { proxyPlugin } from './proxy/plugin.js'
import type { RoutingState } from './proxy/route-request.js'
import { handleUpgrades } from './proxy/upgrade.js'
import { Router } from './routing/router.js'
import { BackendRegistry } from './upstream/registry.js'
import { systemClock, type Clock } from './util/clock.js'
import { systemRandom, type Random } from './util/random.js'

export type GatewayDeps = {
  readonly clock?: Clock
  readonly random?: Random
  /** fastify's logger option (pino); false in tests that read no logs. */
  readonly logger?: FastifyServerOptions['logger']
  /** Where the configuration came from, for /admin/state. */
  readonly configPath?: string
  /** Called after a new routing state is built and warmed, before it is swapped in. */
  readonly beforeSwap?: (next: RoutingState) => void
  /** Called when a backend's instance set changes (the state file is written). */
  readonly onSetChanged?: () => void
}

export type Gateway = {
  readonly publicApp: FastifyInstance
  readonly adminApp: FastifyInstance
  readonly dispatcher: GatewayDispatcher
  readonly metrics: GatewayMetrics
  /** The routing state requests run against; replaced whole by `reload`. */
  readonly state: RoutingState
  readonly isReady: boolean
  readonly isDraining: boolean
  /** Warm every backend (first resolution done or failed into a known state). */
  readonly start: () => Promise<void>
  /** Build and warm the new configuration beside the old one, then swap in one step. */
  readonly reload: (config: GatewayConfig) => Promise<ReloadResult>
  /** How to read the configuration again (set by server.ts). */
  reloadFromFile: () => Promise<ReloadResult>
  /** SIGHUP and POST /admin/reload: reload from the file; a failure keeps the old config and is recorded. */
  readonly requestReload: () => Promise<ReloadResult>
  readonly setDraining: () => void
  readonly close: () => Promise<void>
}

/** Build the gateway for a configuration. Never listens: server.ts does. */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  const logger = deps.logger ?? false
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
    // Requests Node cannot parse still get a JSON answer with an x-request-id (spec §3).
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET') return
      writeRawReply(socket, randomUUID(), clientErrorReply(error.code))
    }
  })
  const adminApp = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) })

  let state: RoutingState
  const metrics = new GatewayMetrics(() => state.registry.all(), (backend, instance) => instanceState(backend, instance, clock.now()))
  const makeRegistry = (next: GatewayConfig, previous?: BackendRegistry): BackendRegistry => new BackendRegistry(next, {
    clock,
    previous,
    random,
    dnsObserver: metrics.dnsObserver,
    events: {
      instanceEjected: metrics.backendEvents.instanceEjected,
      setChanged: () => deps.onSetChanged?.(),
      activeCheckChanged: (backend, instance, isFailing) => {
        publicApp.log[isFailing ? 'warn' : 'info']({ backend, instance: instance.key }, isFailing ? 'instance failing its health check: taken out' : 'instance passing its health check again')
      }
    },
    onCacheRead: metrics.onCacheRead,
    onError: (error) => { publicApp.log.error({ err: error }, 'discovery failed unexpectedly') }
  })
  state = { config, router: new Router(config.frontends), registry: makeRegistry(config) }
  const dispatcher = new GatewayDispatcher(metrics.dispatcherEvents)
  let reloads: Promise<ReloadResult> = Promise.resolve({ ok: true, summary: '' })
  const status = { isStarted: false, isDraining: false, loadedAt: new Date().toISOString(), lastReload: undefined as GatewayStatus['lastReload'] }

  const gateway: Gateway = {
    publicApp,
    adminApp,
    dispatcher,
    metrics,
    get state () { return state },
    get isReady () { return status.isStarted && !status.isDraining },
    get isDraining () { return status.isDraining },
    start: async () => {
      await state.registry.start()
      status.isStarted = true
    },
    reload: async (next) => {
      const candidate: RoutingState = { config: next, router: new Router(next.frontends), registry: makeRegistry(next, state.registry) }
      try {
        await candidate.registry.start()
        deps.beforeSwap?.(candidate)
      } catch (error) {
        candidate.registry.stop()
        throw error
      }
      const previous = state
      state = candidate
      previous.registry.stop()
      status.loadedAt = new Date().toISOString()
      status.lastReload = { at: status.loadedAt, result: 'ok' }
      metrics.reloads.inc({ result: 'ok' })
      return { ok: true, summary: `${next.frontends.length} frontends, ${next.backends.size} backends` }
    },
    reloadFromFile: async () => ({ ok: false, errors: ['this gateway was not started from a file'] }),
    requestReload: async () => {
      // One reload at a time: a burst of SIGHUPs applies in order, never two swaps racing.
      const run = reloads.then(async () => await gateway.reloadFromFile())
      reloads = run.catch((error: unknown) => ({ ok: false, errors: [String(error)] }))
      const result = await run
      if (!result.ok) {
        status.lastReload = { at: new Date().toISOString(), result: 'error', error: result.errors.join('; ') }
        metrics.reloads.inc({ result: 'error' })
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
  await publicApp.register(proxyPlugin, { state: () => state, dispatcher, onFinished: metrics.recordRequest, isDraining: () => status.isDraining })
  handleUpgrades(publicApp.server, { state: () => state, dispatcher, log: publicApp.log, onFinished: metrics.recordRequest })
  await adminApp.register(adminPlugin, {
    token: config.adminToken,
    metrics,
    isReady: () => gateway.isReady,
    state: () => gatewayState(state.config, state, {
      isReady: gateway.isReady,
      isDraining: status.isDraining,
      configPath: deps.configPath,
      loadedAt: status.loadedAt,
      lastReload: status.lastReload
    }, clock, metrics.requestsByBackend),
    reload: gateway.requestReload
  })
  return gateway
}
