import { fileURLToPath } from 'node:url'
import { readConfigFile } from './config/load-file.js'
import { watchConfigFile } from './config/watch.js'
import { systemClock, within, type Timer } from './util/clock.js'
import { WorkerPool } from './cluster/worker-pool.js'
import { clusterWorkers } from './cluster/cluster-workers.js'
import { workerCount } from './cluster/worker-count.js'
import { drainTraffic, listenTraffic, naming, type PublicAddresses } from './data-plane/listeners.js'
import type { GatewayConfig } from './config/types.js'
import { readStateFile, StateFileWriter } from './discovery/state-file.js'
import type { ReloadResult } from './admin/plugin.js'
import { boundAddress } from './util/address.js'
import { systemRandom } from './util/random.js'
import type { DnsFace } from './dns-face/dns-face.js'
import { canShareUdpPort, reserveUdpPorts, type UdpReservation } from './util/shared-udp-port.js'
import { ListenError } from './errors.js'
import { serveTraffic } from './cluster/primary-v8.js'
import { faceViews } from './upstream/face-view.js'
import { defaultMaxConnections } from './edge/client-connections.js'
import type { ControlPlane } from './control-plane/control-plane.js'
import type { Log } from './log/process-log.js'
import { primaryProcess, singleProcess, type Roles } from './roles.js'

export type RunningGateway = {
  readonly roles: Roles
  readonly log: Log
  readonly config: GatewayConfig
  /** The public listeners' addresses (their ports, when 0 was asked). */
  readonly addresses: PublicAddresses
  readonly adminAddress: { readonly host: string, readonly port: number }
  /** The configuration file's text as loaded at start. */
  readonly text: string
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

/** The worker entry point, next to this file once built. */
const WORKER_ENTRY = fileURLToPath(new URL('./cluster/worker-main.js', import.meta.url))

/** Start-up was called off by a signal: not a failure (exit 0). */
export class StartAborted extends Error {
  override name = 'StartAborted'
}

export async function startGateway (configPath: string, options: StartOptions = {}): Promise<RunningGateway> {
  const { config, text, document } = await readConfigFile(configPath)
  const workerTotal = workerCount(config)
  const logLevel = options.logLevel ?? 'info'
  let writer: StateFileWriter | undefined
  // With workers, this process is the primary: one discovery, one health view, no traffic.
  const pool = workerTotal > 1 ? new WorkerPool({ count: workerTotal, spawner: clusterWorkers(WORKER_ENTRY, ['--log-level', logLevel]) }) : undefined
  const roleOptions = {
    logLevel,
    configPath,
    onSetChanged: () => writer?.schedule(),
    loadConfig: async () => await readConfigFile(configPath)
  }
  const roles = pool === undefined ? await singleProcess({ config, document }, roleOptions) : await primaryProcess(config, pool, roleOptions)
  // roles.data (one process) exists once roles.start() has run.
  const { control, log } = roles
  if (config.statePath !== undefined) {
    const statePath = config.statePath
    writer = new StateFileWriter(statePath, () => control.state.registry.savedSets(), {
      onError: (error) => { log.error({ err: error, statePath }, 'could not write the state file') }
    })
    const saved = await readStateFile(statePath)
    if (saved.problem !== undefined) log.warn({ statePath, problem: saved.problem }, 'state file ignored')
    const seeded = control.state.registry.seed(saved.sets)
    if (seeded > 0) log.info({ statePath, sets: seeded }, 'last-known instance sets loaded; served stale if DNS is unreachable')
  }
  for (const warning of config.warnings) log.warn({ path: warning.path, line: warning.line, configPath }, `configuration: ${warning.path}: ${warning.message}`)
  let addresses: PublicAddresses
  let face: DnsFace | undefined
  let facePorts: UdpReservation | undefined
  let adminAddress: { host: string, port: number }
  const signal = options.signal
  const checkAborted = (): void => { if (signal?.aborted === true) throw new StartAborted('start-up called off by a signal') }
  try {
    // The admin listener comes up first: /readyz answers 503 while the first resolutions run.
    await naming('listen.admin', config.listen.admin.label, roles.admin.listen({ host: config.listen.admin.host, port: config.listen.admin.port }))
    adminAddress = boundAddress(roles.admin.server.address(), config.listen.admin)
    checkAborted()
    await untilAborted(roles.start(), signal)
    checkAborted()
    // The DNS face answers from every worker when their UDP sockets can share its port (SO_REUSEPORT);
    // else from this process (one process, or the primary), from the health view.
    if (pool !== undefined && config.dns !== undefined && canShareUdpPort()) {
      const listen = config.dns.listen
      facePorts = await reserveUdpPorts(listen).catch((error: unknown) => { throw ListenError.ofEntry('dns.listen', listen, error) })
    }
    addresses = pool === undefined
      ? roles.data === undefined ? {} : await listenTraffic(roles.data, config.listen)
      : await untilAborted(pool.start(() => control.state, document, log, facePorts?.addresses), signal)
    await facePorts?.release()
    face = config.dns === undefined || facePorts !== undefined ? undefined : await startDnsFace(control, config.dns, addresses)
  } catch (error) {
    // All or nothing: a half-started gateway closes what it opened before reporting.
    pool?.killAll()
    await facePorts?.release()
    await face?.close()
    await roles.close().catch(() => {})
    throw error
  }
  // Ready, and said so, only now: with workers the first of them serves before the last one and the DNS face are up.
  control.setListening()
  log.info({ listen: addresses.http ?? addresses.https, https: addresses.https, admin: adminAddress, dns: face?.addresses ?? facePorts?.addresses.map(({ host, port }) => ({ host, port })), dnsAnsweredBy: config.dns === undefined ? undefined : facePorts === undefined ? 'this process' : 'every worker', backends: [...config.backends.keys()], frontends: config.frontends.length, workers: workerTotal, maxConnections: config.client.maxConnections ?? defaultMaxConnections(), tracing: config.tracing === undefined ? undefined : { endpoint: config.tracing.endpoint, protocol: config.tracing.protocol, sampleRatio: config.tracing.sampleRatio, serviceName: config.tracing.serviceName } }, 'srvgate listening')

  // cert-manager and Kubernetes secrets rewrite certificate files in place (a symlink swap):
  // a change reloads, which reads and checks the new files and keeps the old ones if they are bad.
  const certificateWatch = watchCertificates(config, () => {
    log.info('a certificate or key file changed: reloading')
    void control.reload()
  }, (error) => { log.warn({ err: error }, 'cannot watch a certificate file; SIGHUP still reloads it') })

  let draining: Promise<void> | undefined
  const drain = async (): Promise<void> => {
    draining ??= (async () => {
      certificateWatch.stop()
      // DNS clients move to another replica at once: an answer naming a draining gateway helps nobody.
      await face?.close()
      control.setDraining()
      if (roles.data !== undefined) {
        await drainTraffic(roles.data, control.state.config.drain)
      } else if (pool !== undefined) {
        // Every worker drains on its own listener connections; the primary waits for all of them.
        const { delayMs, timeoutMs } = control.state.config.drain
        log.info({ delayMs, timeoutMs, workers: pool.status().running }, 'draining: readyz answers 503; every worker drains')
        if (await within(systemClock, pool.drain(), delayMs + timeoutMs + 5000) === 'timeout') {
          log.warn('workers still running after drain.delay + drain.timeout: killing them')
          pool.killAll()
        }
      }
      await writer?.flush()
      await within(systemClock, roles.close(), 2000)
      log.info('drained')
    })()
    await draining
  }
  return { roles, log, config, text, addresses, adminAddress, reload: async () => await control.reload(), drain }
}

async function startDnsFace (control: ControlPlane, dns: NonNullable<GatewayConfig['dns']>, addresses: PublicAddresses): Promise<DnsFace> {
  // The face answers queries in this process (a cluster's primary too): its code gets optimized.
  serveTraffic()
  // Loaded only when dns is configured: a primary without a face keeps its memory (docs/BENCHMARKS.md, "the primary's RSS").
  const { DnsFace } = await import('./dns-face/dns-face.js')
  const { faceReports } = await import('./dns-face/reports.js')
  const face = new DnsFace({
    view: faceViews(() => control.state),
    config: () => control.state.config.dns,
    publicAddress: addresses.http ?? addresses.https,
    clock: systemClock,
    random: systemRandom,
    ...faceReports(control.metrics, control.log)
  })
  try {
    await face.listen(dns.listen)
  } catch (error) {
    // The face (closed already) binds each address over UDP and TCP: the failing one is the entry with the error's port.
    throw ListenError.ofEntry('dns.listen', dns.listen, error)
  }
  return face
}

/** Every certificate and key file of the configuration, watched (folder watches, debounced): one callback per burst of changes. */
function watchCertificates (config: GatewayConfig, onChange: () => void, onError: (error: unknown) => void): { stop: () => void } {
  const paths = [...new Set((config.tls?.certificates ?? []).flatMap(({ certPath, keyPath }) => [certPath, keyPath]))]
  let timer: Timer | undefined
  const changed = (): void => {
    timer?.cancel()
    timer = systemClock.setTimeout(onChange, 100, { unref: true })
  }
  const watchers = paths.map((path) => watchConfigFile(path, changed, { onError }))
  return {
    stop: () => {
      timer?.cancel()
      for (const watcher of watchers) watcher.stop()
    }
  }
}

/** `work`, or StartAborted as soon as the signal fires. */
async function untilAborted<T> (work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await work
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(new StartAborted('start-up called off by a signal')) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort as () => void)
  }
}
