import { configSummary } from '../config/summary.js'
import type { GatewayMetrics } from '../admin/metrics.js'
import type { ReloadResult } from '../admin/plugin.js'
import type { GatewayStatus } from '../admin/state.js'
import type { LoadedConfig } from '../config/load-file.js'
import type { AcmeConfig, GatewayConfig } from '../config/types.js'
import { AcmeCertificates, type AcmeDeps } from '../acme/acme-certificates.js'
import { ConfigError, formatIssue } from '../errors.js'
import type { Log } from '../log/process-log.js'
import type { RoutingState } from '../proxy/route-request.js'
import { Router } from '../routing/router.js'
import { CertificateStore } from '../tls/certificates.js'
import { SessionTicketKeys } from '../tls/session-tickets.js'
import { BackendRegistry } from '../upstream/registry.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import { ResolverCaches } from '../upstream/resolver-caches.js'
import { isoNow, type Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import type { DataPlanes } from './data-planes.js'
import { changedListeners } from './restart-only.js'

/** What tls.acme needs of the control plane: its data planes (set once served), its log, clock and metrics. */
function acmeDeps (deps: ControlPlaneDeps, control: () => ControlPlane | undefined): AcmeDeps {
  return {
    clock: deps.clock,
    log: deps.log,
    publish: (certificates) => { control()?.dataPlanes?.issuedCertificates(certificates) },
    putChallenges: async (set) => {
      const dataPlanes = control()?.dataPlanes
      if (dataPlanes === undefined) throw new Error('no data plane to answer the challenge yet')
      await dataPlanes.acmeChallenges(set)
    },
    ordered: deps.metrics.acmeOrdered,
    refusedOnDemand: deps.metrics.acmeRefusedOnDemand,
    storageReachable: (isUp) => {
      deps.metrics.acmeStorageUp.set(isUp ? 1 : 0)
      if (isUp) deps.log.info('acme: storage reachable')
      else deps.log.warn('acme: storage unreachable (redis); certificates in hand keep serving, new orders wait')
    },
    state: () => (control() as ControlPlane).state
  }
}

export type ControlPlaneDeps = {
  readonly clock: Clock
  readonly random: Random
  readonly log: Log
  readonly metrics: GatewayMetrics
  /** Where the configuration came from, for /admin/state. */
  readonly configPath?: string
  /** Called when a backend's instance set changes, and after a reload (the state file is written). */
  readonly onSetChanged?: () => void
  /** Reads the configuration again (the file, with nameserver host names resolved anew). Without it, a reload is refused. */
  readonly loadConfig?: () => Promise<LoadedConfig>
}

/** A configuration built and warmed beside the running one, not yet serving. */
type Candidate = { readonly state: RoutingState<ControlBackend>, readonly caches: ResolverCaches, readonly certificates: CertificateStore | undefined, readonly acme: AcmeCertificates | undefined }

/**
 * The control plane's composition root: the configuration, discovery (the
 * resolver caches and every backend's instance set), health (ejections and
 * checks), the certificates' files, and the reload that builds a new
 * generation beside the running one and switches every data plane to it in
 * one step. It serves no traffic: its data planes read its facts (in this
 * process, or in worker processes through cluster/).
 */
export class ControlPlane {
  readonly log: Log
  readonly metrics: GatewayMetrics
  readonly status: { isStarted: boolean, isListening: boolean, isDraining: boolean, loadedAt: string, lastReload: GatewayStatus['lastReload'], restartNeeded: readonly string[] }
  readonly configPath: string | undefined
  readonly #deps: ControlPlaneDeps
  readonly #running: GatewayConfig
  #dataPlanes: DataPlanes | undefined
  #state: RoutingState<ControlBackend>
  #caches: ResolverCaches
  #certificates: CertificateStore | undefined
  /** The HTTPS listeners' ticket key, one for every data plane (undefined: no HTTPS, or tickets off). */
  readonly #ticketKeys: SessionTicketKeys | undefined
  /** tls.acme's certificates: ordered here, served by every data plane. */
  #acme: AcmeCertificates | undefined
  #reloads: Promise<ReloadResult> = Promise.resolve({ ok: true, summary: '', restartNeeded: [] })

  static async create (config: GatewayConfig, deps: ControlPlaneDeps, generation = 0): Promise<ControlPlane> {
    // The files the HTTPS listener serves: read here for /admin/state, /metrics and expiry warnings.
    const certificates = config.tls === undefined || config.listen.https === undefined ? undefined : await CertificateStore.load(config.tls, deps.clock.wallNow())
    let control: ControlPlane | undefined
    // What storage holds is read before anything listens: the first handshakes are served from it.
    const acme = certificates === undefined || config.tls?.acme === undefined ? undefined : await AcmeCertificates.load(config.tls.acme, acmeDeps(deps, () => control))
    control = new ControlPlane(config, deps, generation, certificates, acme)
    return control
  }

  private constructor (config: GatewayConfig, deps: ControlPlaneDeps, generation: number, certificates: CertificateStore | undefined, acme: AcmeCertificates | undefined) {
    this.#deps = deps
    this.#running = config
    this.log = deps.log
    this.metrics = deps.metrics
    this.configPath = deps.configPath
    this.status = { isStarted: false, isListening: false, isDraining: false, loadedAt: isoNow(deps.clock), lastReload: undefined, restartNeeded: [] }
    this.#certificates = certificates
    this.#acme = acme
    deps.metrics.countCertificates(() => (this.#certificates?.certificates ?? []).filter((certificate) => certificate.source === 'file'))
    deps.metrics.countServedNames(() => this.#servedNames())
    if (certificates !== undefined) this.#warnExpiring(certificates)
    // The control plane owns the resolver caches across reloads: unchanged resolvers keep theirs.
    this.#caches = new ResolverCaches(config.resolvers, { clock: deps.clock, random: deps.random, dnsObserver: deps.metrics.dnsObserver, onCacheRead: deps.metrics.onCacheRead, onError: this.#onError })
    this.#state = this.#routingState(config, generation, this.#caches, undefined)
    const tickets = config.tls?.sessionTickets
    this.#ticketKeys = certificates === undefined || tickets?.enabled !== true
      ? undefined
      : new SessionTicketKeys({ clock: deps.clock, rotateEveryMs: tickets.rotateEveryMs, onKey: (key) => { this.#dataPlanes?.sessionTicketKey(key) } })
  }

  /** The data planes that serve this configuration; set once, before start. */
  serve (dataPlanes: DataPlanes): void {
    this.#dataPlanes = dataPlanes
    if (this.#ticketKeys !== undefined) dataPlanes.sessionTicketKey(this.#ticketKeys.key)
    if (this.#acme !== undefined) dataPlanes.issuedCertificates(this.#acme.held())
    dataPlanes.answerAcme({
      certificate: async (name) => await (this.#acme?.want(name) ?? false),
      challenge: async (type, key) => {
        const found = await this.#acme?.findChallenge(type, key)
        if (found === undefined) return undefined
        return found.type === 'http-01' ? { keyAuthorization: found.keyAuthorization } : { cert: found.cert, key: found.key }
      }
    })
  }

  /** The data planes, for tls.acme: it publishes certificates and puts challenges up through them. */
  get dataPlanes (): DataPlanes | undefined { return this.#dataPlanes }
  get acme (): AcmeCertificates | undefined { return this.#acme }

  get state (): RoutingState<ControlBackend> { return this.#state }
  get certificates (): CertificateStore | undefined { return this.#certificates }

  // Ready once warm and every listener answers (a balancer that trusts readyz must find each one
  // up, the DNS face included), and while a data plane serves traffic.
  get isReady (): boolean { return this.status.isStarted && this.status.isListening && !this.status.isDraining && this.#dataPlanes?.isServing() === true }

  /** Warm every backend (first resolution done or failed into a known state). */
  async start (): Promise<void> {
    await this.#state.registry.start()
    this.status.isStarted = true
  }

  /** Every listener answers: tls.acme can have challenges validated, so its orders start. */
  setListening (): void {
    this.status.isListening = true
    this.#acme?.start()
  }
  setDraining (): void { this.status.isDraining = true }

  /**
   * SIGHUP, POST /admin/reload, --watch: load the configuration again, build
   * and warm it beside the old one, swap in one step. One at a time (a burst
   * of SIGHUPs applies in order, never two swaps racing); a failure keeps the
   * old configuration and is recorded.
   */
  async reload (): Promise<ReloadResult> {
    const run = this.#reloads.then(async () => await this.#loadAndApply())
    this.#reloads = run.catch((error: unknown) => ({ ok: false, errors: [String(error)] }))
    const result = await run
    if (!result.ok) {
      this.status.lastReload = { at: isoNow(this.#deps.clock), result: 'error', error: result.errors.join('; ') }
      this.metrics.reloaded(false)
      this.log.error({ errors: result.errors }, 'reload failed; the previous configuration stays in use')
    } else if (result.restartNeeded.length > 0) {
      // Applied, but not all of it: an operator who reads only the level must still see it.
      this.log.warn({ summary: result.summary, restartNeeded: result.restartNeeded }, 'configuration reloaded')
    } else {
      this.log.info({ summary: result.summary, restartNeeded: result.restartNeeded }, 'configuration reloaded')
    }
    return result
  }

  close (): void {
    this.#state.registry.stop()
    this.#ticketKeys?.stop()
    this.#acme?.stop()
  }

  /** The reload path, one straight line: load, build and warm beside (in every data plane too), swap, record. */
  async #loadAndApply (): Promise<ReloadResult> {
    if (this.#deps.loadConfig === undefined) return { ok: false, errors: ['this gateway was not started from a file'] }
    let loaded: LoadedConfig
    try {
      loaded = await this.#deps.loadConfig()
    } catch (error) {
      return { ok: false, errors: error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message] }
    }
    let candidate: Candidate
    try {
      candidate = await this.#prepare(loaded.config, this.#state.generation + 1)
    } catch (error) {
      return { ok: false, errors: [(error as Error).message] }
    }
    const dataPlanes = this.#dataPlanes
    if (dataPlanes !== undefined) {
      // Every data plane builds the same checked document beside its running one, or none switches.
      try {
        await dataPlanes.prepare(candidate.state.generation, loaded.document, candidate.state)
      } catch (error) {
        candidate.state.registry.stop()
        return { ok: false, errors: [(error as Error).message] }
      }
      dataPlanes.commit(candidate.state.generation)
    }
    return { ok: true, ...this.#commit(candidate) }
  }

  /** Build and warm `next` beside the running configuration; nothing changes for requests yet. */
  async #prepare (next: GatewayConfig, generation: number): Promise<Candidate> {
    const caches = this.#caches.next(next.resolvers)
    // New certificates are read first: a broken or mismatched file refuses the reload, the old ones keep serving.
    const certificates = this.#certificates === undefined || next.tls === undefined ? undefined : await CertificateStore.load(next.tls, this.#deps.clock.wallNow())
    // tls.acme set by this reload: its stored certificates are read now; a running one takes the new names at commit.
    const acme = certificates === undefined || next.tls?.acme === undefined || this.#acme !== undefined ? undefined : await AcmeCertificates.load(next.tls.acme, acmeDeps(this.#deps, () => this))
    const state = this.#routingState(next, generation, caches, this.#state.registry)
    await state.registry.startBeside()
    return { state, caches, certificates, acme }
  }

  /** Swap in one step; returns the summary and the fields that wait for a restart. */
  #commit (candidate: Candidate): { summary: string, restartNeeded: string[] } {
    const next = candidate.state.config
    const previous = this.#state
    this.#state = candidate.state
    this.#caches = candidate.caches
    previous.registry.stop()
    if (candidate.certificates !== undefined) {
      this.#certificates = candidate.certificates
      this.#warnExpiring(candidate.certificates)
    }
    if (next.tls !== undefined) this.#ticketKeys?.setRotateEvery(next.tls.sessionTickets.rotateEveryMs)
    this.#commitAcme(candidate.acme, candidate.certificates === undefined ? undefined : next.tls?.acme)
    // Listeners are bound once: compared with what runs, not with the last file read.
    const restartNeeded = changedListeners(this.#running, next)
    this.status.loadedAt = isoNow(this.#deps.clock)
    this.status.lastReload = { at: this.status.loadedAt, result: 'ok' }
    this.status.restartNeeded = restartNeeded
    this.metrics.reloaded(true, restartNeeded)
    this.#deps.onSetChanged?.()
    const summary = configSummary(next)
    return { summary: restartNeeded.length === 0 ? summary : `${summary}; restart to apply ${restartNeeded.join(', ')}`, restartNeeded }
  }

  #routingState (config: GatewayConfig, generation: number, caches: ResolverCaches, previous: BackendRegistry<ControlBackend> | undefined): RoutingState<ControlBackend> {
    const { clock, random, metrics, log } = this.#deps
    const registry = BackendRegistry.control(config, {
      clock,
      random,
      caches,
      // Backends of the same name keep their health (ejections, checks, in-flight counts).
      healthOf: (name) => previous?.named(name)?.health,
      // Environments alive before a reload are made again without spending templatedBackends.newPerSecond.
      wasAlive: (name) => previous?.named(name) !== undefined,
      onTemplateRefused: metrics.templateRefused,
      dnsObserver: metrics.dnsObserver,
      events: {
        instanceEjected: metrics.backendEvents.instanceEjected,
        setChanged: (_label, _added, removed) => {
          this.#deps.onSetChanged?.()
          this.#dataPlanes?.setChanged(removed)
        },
        activeCheckChanged: (backend, instance, isFailing) => {
          log[isFailing ? 'warn' : 'info']({ backend, instance: instance.key }, isFailing ? 'instance failing its health check: taken out' : 'instance passing its health check again')
        },
        discoveryChanged: (backend, snapshot) => { this.#dataPlanes?.discoveryChanged(generation, backend, snapshot) },
        healthChanged: (backend, fact) => { this.#dataPlanes?.healthChanged(generation, backend, fact) }
      },
      onCacheRead: metrics.onCacheRead,
      onError: this.#onError
    })
    return { config, generation, router: new Router(config.frontends), registry }
  }

  /** tls.acme after a reload: started, given its new names, or stopped (its certificates no longer served). */
  #commitAcme (started: AcmeCertificates | undefined, next: AcmeConfig | undefined): void {
    if (started !== undefined) {
      this.#acme = started
      this.#dataPlanes?.issuedCertificates(started.held())
      if (this.status.isListening) started.start()
      return
    }
    if (this.#acme === undefined) return
    if (next === undefined) {
      this.#acme.stop()
      this.#acme = undefined
      this.#dataPlanes?.issuedCertificates([])
      return
    }
    this.#acme.apply(next).catch((error: unknown) => { this.log.error({ err: error }, 'acme: the new tls.acme could not be applied') })
  }

  /** Each name served and the notAfter of its certificate: a file's first, as the listener picks them. */
  #servedNames (): Array<{ name: string, source: 'file' | 'acme', notAfterMs: number }> {
    const served = new Map<string, { name: string, source: 'file' | 'acme', notAfterMs: number }>()
    for (const certificate of this.#certificates?.certificates ?? []) {
      for (const name of certificate.names) if (!served.has(name)) served.set(name, { name, source: 'file', notAfterMs: certificate.notAfterMs })
    }
    for (const status of this.#acme?.status() ?? []) {
      if (status.notAfterMs !== undefined && !served.has(status.name)) served.set(status.name, { name: status.name, source: 'acme', notAfterMs: status.notAfterMs })
    }
    return [...served.values()]
  }

  readonly #onError = (error: unknown): void => { this.log.error({ err: error }, 'discovery failed unexpectedly') }

  #warnExpiring (store: CertificateStore): void {
    for (const warning of store.warnings) this.log.warn({ path: warning.path }, `certificate: ${warning.message}`)
  }
}
