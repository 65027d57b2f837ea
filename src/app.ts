import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from './config/types.js'
import { GatewayDispatcher } from './proxy/dispatcher.js'
import { requestIdOf } from './proxy/headers.js'
import { proxyPlugin } from './proxy/plugin.js'
import { handleUpgrades } from './proxy/upgrade.js'
import type { RoutingState } from './proxy/route-request.js'
import { Router } from './routing/router.js'
import { BackendRegistry } from './upstream/registry.js'
import { systemClock, type Clock } from './util/clock.js'
import { systemRandom, type Random } from './util/random.js'

export type GatewayDeps = {
  readonly clock?: Clock
  readonly random?: Random
  /** fastify's logger option (pino); false in tests that read no logs. */
  readonly logger?: FastifyServerOptions['logger']
}

export type Gateway = {
  readonly publicApp: FastifyInstance
  readonly dispatcher: GatewayDispatcher
  /** The routing state requests run against (swapped whole on reload). */
  state: RoutingState
  /** Warm every backend (first resolution done or failed into a known state). */
  readonly start: () => Promise<void>
  readonly close: () => Promise<void>
}

/** Build the gateway for a configuration. Never listens: server.ts does. */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  const publicApp = Fastify({
    logger: deps.logger ?? false,
    // One access-log line per request comes from proxy/plugin.ts instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    // Bodies stream through; no limit applies to what fastify never buffers.
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  })
  const registry = new BackendRegistry(config, {
    clock,
    random,
    onError: (error) => { publicApp.log.error({ err: error }, 'discovery failed unexpectedly') }
  })
  const dispatcher = new GatewayDispatcher()
  const gateway: Gateway = {
    publicApp,
    dispatcher,
    state: { router: new Router(config.frontends), registry },
    start: async () => { await gateway.state.registry.start() },
    close: async () => {
      await publicApp.close()
      gateway.state.registry.stop()
      await dispatcher.close()
    }
  }
  await publicApp.register(proxyPlugin, { state: () => gateway.state, dispatcher })
  handleUpgrades(publicApp.server, { state: () => gateway.state, dispatcher, log: publicApp.log })
  return gateway
}
