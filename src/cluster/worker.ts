import { buildGateway, type Candidate, type Gateway, type WorkerStats } from '../app.js'
import { parseConfigText } from '../config/load.js'
import type { GatewayConfig } from '../config/types.js'
import { drainTraffic, listenTraffic, type PublicAddresses } from '../traffic.js'
import { ConfigError, formatIssue } from '../errors.js'
import type { BackendRegistry } from '../upstream/registry.js'
import { GenerationView, applyFromPrimary } from './remote-view.js'
import { PROTOCOL_VERSION, type ToPrimary, type ToWorker, type WireBackend } from './protocol.js'
import { channelToPrimary } from './channel.js'
import { stateOfGeneration } from './generations.js'

/**
 * A cluster worker: serves traffic on the shared public listener with the
 * configuration and instance sets the primary sends; reports passive
 * failures; never asks DNS, never checks health, never writes the state
 * file, never reloads on its own. Messages are handled one at a time, in
 * order, so a set sent after a configuration always finds it.
 */
export async function runWorker (options: { readonly logLevel: string }): Promise<void> {
  // Ctrl-C reaches the whole process group: the primary decides when workers drain.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})
  const views = new Map<number, GenerationView>()
  let gateway: Gateway | undefined
  let pending: { readonly generation: number, readonly candidate: Candidate } | undefined
  let isDraining = false
  const channel = channelToPrimary({
    // Before the gateway (and its logger) exists, a plain line on stderr.
    error: (fields, message) => {
      if (gateway !== undefined) gateway.log.error(fields, message)
      else process.stderr.write(`${JSON.stringify({ level: 'error', pid: process.pid, ...fields, msg: message })}\n`)
    }
  })
  const send = (message: ToPrimary): void => { channel.send(message) }

  const registryOf = (generation: number): BackendRegistry | undefined => stateOfGeneration(generation, gateway?.state, pending?.candidate.state)?.registry
  const applyHealth = (registry: BackendRegistry, backends: readonly WireBackend[]): void => {
    for (const backend of backends) for (const view of backend.health) registry.named(backend.name)?.applyHealth(view)
  }
  const drain = async (): Promise<void> => {
    if (isDraining) return
    isDraining = true
    if (gateway !== undefined) {
      await drainTraffic(gateway)
      await gateway.close().catch(() => {})
    }
    process.exit(0)
  }

  const handle = async (message: ToWorker): Promise<void> => {
    switch (message.type) {
      case 'srvgate:config': {
        const { generation, text, backends } = message
        let config: GatewayConfig
        try {
          config = parseConfigText(text)
        } catch (error) {
          const reason = error instanceof ConfigError ? error.issues.map(formatIssue).join('; ') : (error as Error).message
          if (message.phase === 'prepare') send({ type: 'srvgate:prepared', generation, error: reason })
          else send({ type: 'srvgate:start-failed', error: reason })
          return
        }
        views.set(generation, new GenerationView(generation, backends, send))
        if (message.phase === 'init') {
          try {
            const started = await start(config, generation, options.logLevel, views, applyHealth, backends)
            gateway = started.gateway
            send({ type: 'srvgate:listening', addresses: started.addresses })
          } catch (error) {
            send({ type: 'srvgate:start-failed', error: (error as Error).message })
            process.exit(1)
          }
          return
        }
        if (gateway === undefined) return
        try {
          const candidate = await gateway.prepare(config, generation)
          applyHealth(candidate.state.registry, backends)
          pending = { generation, candidate }
          send({ type: 'srvgate:prepared', generation })
        } catch (error) {
          views.delete(generation)
          send({ type: 'srvgate:prepared', generation, error: (error as Error).message })
        }
        return
      }
      case 'srvgate:commit':
        if (gateway === undefined || pending?.generation !== message.generation) return
        gateway.commit(pending.candidate)
        pending = undefined
        for (const generation of views.keys()) if (generation < message.generation) views.delete(generation)
        return
      case 'srvgate:abort':
        if (gateway !== undefined && pending?.generation === message.generation) gateway.abort(pending.candidate)
        if (pending?.generation === message.generation) pending = undefined
        views.delete(message.generation)
        return
      case 'srvgate:set':
      case 'srvgate:health':
      case 'srvgate:template-refused':
        applyFromPrimary(message, views.get(message.generation), registryOf(message.generation))
        return
      case 'srvgate:stats':
        if (gateway !== undefined) send({ type: 'srvgate:stats', id: message.id, stats: await statsOf(gateway) })
        return
      case 'srvgate:drain':
        void drain()
    }
  }

  let queue = Promise.resolve()
  channel.onMessage((message) => {
    // Stats and drain must not wait behind a slow prepare: they do not touch configuration.
    if (message.type === 'srvgate:drain' || message.type === 'srvgate:stats') {
      void handle(message)
      return
    }
    queue = queue.then(async () => { await handle(message) }).catch((error: unknown) => {
      gateway?.log.error({ err: error }, 'cluster message failed')
    })
  })
  // The primary is gone (killed): nobody will tell us to drain, so drain now.
  channel.onClose(() => { void drain() })
  send({ type: 'srvgate:hello', version: PROTOCOL_VERSION })
}

async function start (
  config: GatewayConfig,
  generation: number,
  logLevel: string,
  views: ReadonlyMap<number, GenerationView>,
  applyHealth: (registry: BackendRegistry, backends: readonly WireBackend[]) => void,
  backends: readonly WireBackend[]
): Promise<{ gateway: Gateway, addresses: PublicAddresses }> {
  const gateway = await buildGateway(config, {
    logger: { level: logLevel },
    role: 'worker',
    generation,
    remote: (forGeneration) => {
      const view = views.get(forGeneration)
      if (view === undefined) throw new Error(`no instance sets for configuration generation ${forGeneration}`)
      return view
    }
  })
  applyHealth(gateway.state.registry, backends)
  await gateway.start()
  const addresses = await listenTraffic(gateway, config.listen)
  gateway.setListening()
  return { gateway, addresses }
}

async function statsOf (gateway: Gateway): Promise<WorkerStats> {
  const inFlight: Array<readonly [string, string, number]> = []
  for (const backend of gateway.state.registry.all()) {
    for (const record of backend.health.values()) if (record.inFlight > 0) inFlight.push([backend.name, record.key, record.inFlight])
  }
  return {
    metrics: await gateway.metrics.registry.getMetricsAsJSON(),
    byBackend: [...gateway.metrics.requestsByBackend],
    inFlight
  }
}
