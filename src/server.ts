import { loadConfigFile } from './config/load.js'
import type { GatewayConfig } from './config/types.js'
import { readStateFile, StateFileWriter } from './discovery/state-file.js'
import type { ReloadResult } from './admin/plugin.js'
import { buildGateway, type Gateway } from './app.js'
import { boundAddress } from './util/address.js'
import { sleep, systemClock, type Timer } from './util/clock.js'

export type RunningGateway = {
  readonly gateway: Gateway
  readonly config: GatewayConfig
  /** The public listener's address (its port, when 0 was asked). */
  readonly address: { readonly host: string, readonly port: number }
  readonly adminAddress: { readonly host: string, readonly port: number }
  /** SIGHUP: read the file again; on any error keep serving the old config. */
  readonly reload: () => Promise<ReloadResult>
  /** SIGTERM: readyz 503, wait drain.delay, stop accepting, finish in-flight up to drain.timeout. */
  readonly drain: () => Promise<void>
}

/**
 * Load, warm, listen. Nothing listens before the whole configuration is
 * valid and every backend's first resolution is done or failed (spec §5:
 * never a half-started gateway).
 */
export type StartOptions = {
  readonly logLevel?: string
  /** Aborted (SIGTERM during start-up): stop warming, close what is open, throw StartAborted. */
  readonly signal?: AbortSignal
}

/** Start-up was called off by a signal: not a failure (exit 0). */
export class StartAborted extends Error {
  override name = 'StartAborted'
}

export async function startGateway (configPath: string, options: StartOptions = {}): Promise<RunningGateway> {
  const config = await loadConfigFile(configPath)
  let writer: StateFileWriter | undefined
  const gateway = await buildGateway(config, {
    logger: { level: options.logLevel ?? 'info' },
    configPath,
    onSetChanged: () => writer?.schedule(),
    loadConfig: async () => await loadConfigFile(configPath)
  })
  const log = gateway.publicApp.log
  if (config.statePath !== undefined) {
    const statePath = config.statePath
    writer = new StateFileWriter(statePath, () => gateway.state.registry.savedSets(), {
      onError: (error) => { log.error({ err: error, statePath }, 'could not write the state file') }
    })
    const saved = await readStateFile(statePath)
    if (saved.problem !== undefined) log.warn({ statePath, problem: saved.problem }, 'state file ignored')
    const seeded = gateway.state.registry.seed(saved.sets)
    if (seeded > 0) log.info({ statePath, sets: seeded }, 'last-known instance sets loaded; served stale if DNS is unreachable')
  }
  for (const warning of config.warnings) log.warn({ path: warning.path, line: warning.line, configPath }, `configuration: ${warning.path}: ${warning.message}`)
  let address: { host: string, port: number }
  let adminAddress: { host: string, port: number }
  const signal = options.signal
  const checkAborted = (): void => { if (signal?.aborted === true) throw new StartAborted('start-up called off by a signal') }
  try {
    // The admin listener comes up first: /readyz answers 503 while the first resolutions run.
    adminAddress = await listen(gateway.adminApp, config.listen.admin)
    checkAborted()
    await untilAborted(gateway.start(), signal)
    checkAborted()
    address = await listen(gateway.publicApp, config.listen.http)
  } catch (error) {
    // All or nothing: a half-started gateway closes what it opened before reporting.
    await gateway.close().catch(() => {})
    throw error
  }
  log.info({ listen: address, admin: adminAddress, backends: [...config.backends.keys()], frontends: config.frontends.length }, 'srvgate listening')

  let draining: Promise<void> | undefined
  const drain = async (): Promise<void> => {
    draining ??= (async () => {
      const { delayMs, timeoutMs } = gateway.state.config.drain
      gateway.setDraining()
      log.info({ delayMs, timeoutMs }, 'draining: readyz answers 503')
      await sleep(systemClock, delayMs)
      const closing = gateway.publicApp.close().then(() => 'closed' as const)
      // drain.timeout bounds the drain whatever is in flight: then every connection,
      // queued upstream request and pool goes, and the process exits.
      const deadline = timeout(timeoutMs)
      const outcome = await Promise.race([closing, deadline.promise])
      deadline.cancel()
      if (outcome === 'timeout') {
        log.warn({ timeoutMs, inFlight: (await gateway.metrics.inFlight.get()).values[0]?.value ?? 0 }, 'drain timeout: closing the remaining connections')
        gateway.publicApp.server.closeAllConnections()
        await gateway.dispatcher.destroy()
        const grace = timeout(1000)
        await Promise.race([closing, grace.promise])
        grace.cancel()
      }
      await writer?.flush()
      const grace = timeout(2000)
      await Promise.race([gateway.close(), grace.promise])
      grace.cancel()
      log.info('drained')
    })()
    await draining
  }
  return { gateway, config, address, adminAddress, reload: gateway.reload, drain }
}

async function listen (app: Gateway['publicApp'], address: GatewayConfig['listen']['http']): Promise<{ host: string, port: number }> {
  await app.listen({ host: address.host, port: address.port })
  return boundAddress(app.server.address(), address)
}

function timeout (ms: number): { promise: Promise<'timeout'>, cancel: () => void } {
  let timer: Timer | undefined
  const promise = new Promise<'timeout'>((resolve) => { timer = systemClock.setTimeout(() => { resolve('timeout') }, ms) })
  return { promise, cancel: () => { timer?.cancel() } }
}

/** `work`, or StartAborted as soon as the signal fires. */
async function untilAborted (work: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return await work
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(new StartAborted('start-up called off by a signal')) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([work, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort as () => void)
  }
}
