import { parseConfigText } from '../config/load.js'
import type { GatewayConfig } from '../config/types.js'
import { drainTraffic, listenTraffic } from '../data-plane/listeners.js'
import { statsOf } from '../data-plane/stats.js'
import { ConfigError, formatIssue } from '../errors.js'
import type { BackendRegistry } from '../upstream/registry.js'
import { WorkerGateway, type PendingGeneration } from './worker-gateway.js'
import { GenerationView, applyFromPrimary } from './remote-view.js'
import { PROTOCOL_VERSION } from './protocol-version.js'
import type { ToPrimary, ToWorker, WireBackend } from './protocol.js'
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
  let gateway: WorkerGateway | undefined
  let pending: PendingGeneration | undefined
  let isDraining = false
  const channel = channelToPrimary({
    // Before the gateway (and its logger) exists, a plain line on stderr.
    error: (fields, message) => {
      if (gateway !== undefined) gateway.data.log.error(fields, message)
      else process.stderr.write(`${JSON.stringify({ level: 'error', pid: process.pid, ...fields, msg: message })}\n`)
    }
  })
  const send = (message: ToPrimary): void => { channel.send(message) }

  const registryOf = (generation: number): BackendRegistry | undefined => stateOfGeneration(generation, gateway?.state, pending?.state)?.registry
  const applyHealth = (registry: BackendRegistry, backends: readonly WireBackend[]): void => {
    for (const backend of backends) for (const view of backend.health) registry.named(backend.name)?.applyHealth(view)
  }
  const drain = async (): Promise<void> => {
    if (isDraining) return
    isDraining = true
    if (gateway !== undefined) {
      await drainTraffic(gateway.data, gateway.state.config.drain)
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
            gateway = await WorkerGateway.start(config, generation, options.logLevel, views)
            applyHealth(gateway.state.registry, backends)
            send({ type: 'srvgate:listening', addresses: await listenTraffic(gateway.data, config.listen) })
          } catch (error) {
            send({ type: 'srvgate:start-failed', error: (error as Error).message })
            process.exit(1)
          }
          return
        }
        if (gateway === undefined) return
        try {
          pending = await gateway.prepare(config, generation)
          applyHealth(pending.state.registry, backends)
          send({ type: 'srvgate:prepared', generation })
        } catch (error) {
          views.delete(generation)
          send({ type: 'srvgate:prepared', generation, error: (error as Error).message })
        }
        return
      }
      case 'srvgate:commit':
        if (gateway === undefined || pending?.generation !== message.generation) return
        gateway.commit(pending)
        pending = undefined
        for (const generation of views.keys()) if (generation < message.generation) views.delete(generation)
        return
      case 'srvgate:abort':
        if (pending?.generation === message.generation) pending.state.registry.stop()
        if (pending?.generation === message.generation) pending = undefined
        views.delete(message.generation)
        return
      case 'srvgate:set':
      case 'srvgate:health':
      case 'srvgate:template-refused':
        applyFromPrimary(message, views.get(message.generation), registryOf(message.generation))
        return
      case 'srvgate:stats':
        if (gateway !== undefined) send({ type: 'srvgate:stats', id: message.id, stats: await statsOf(gateway.data.metrics, gateway.state.registry) })
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
      gateway?.data.log.error({ err: error }, 'cluster message failed')
    })
  })
  // The primary is gone (killed): nobody will tell us to drain, so drain now.
  channel.onClose(() => { void drain() })
  send({ type: 'srvgate:hello', version: PROTOCOL_VERSION })
}
