import type { BackendOptions, BackendTemplateConfig, DiscoveryConfig, GatewayConfig, ResolverConfig } from '../config/types.js'
import { ResolverCache, TargetAddressCache, lookupKey, type CacheReadResult } from '../dns/cache.js'
import type { SavedSet } from '../discovery/state-file.js'
import { DnsResolver, type Lookup } from '../dns/resolver.js'
import { DnsTransport } from '../dns/transport.js'
import { silentObserver, type DnsObserver } from '../dns/types.js'
import { DiscoveryWatcher } from '../discovery/watcher.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import { Backend, type BackendEvents } from './backend.js'
import { ActiveChecker } from '../health/active-checker.js'
import { AddressPolicy, ownListeners, type OwnListeners } from './address-policy.js'

export type RegistryDeps = {
  readonly clock: Clock
  readonly random: Random
  readonly dnsObserver?: DnsObserver
  readonly events?: BackendEvents
  readonly onError?: (error: unknown) => void
  readonly onCacheRead?: (result: CacheReadResult) => void
  /** Most templated backends alive at once (a flood of hosts cannot grow memory). Default: templatedBackends.max. */
  readonly maxTemplated?: number
  /** A templated backend unused this long is reclaimed. Default: templatedBackends.idleTimeout. */
  readonly templateIdleMs?: number
  /** The registry this one replaces (reload): backends of the same name keep their health records. */
  readonly previous?: BackendRegistry
}

const ENV = '{env}'

/**
 * Every backend by name: the static ones from the config, warmed at start,
 * and templated ones (`web-{env}`) made on first use, bounded in number and
 * reclaimed when idle. One ResolverCache per configured resolver.
 */
export class BackendRegistry {
  readonly caches: ReadonlyMap<string, ResolverCache>
  readonly #config: GatewayConfig
  #deps: RegistryDeps
  readonly #static = new Map<string, Backend>()
  readonly #checkers = new Map<Backend, ActiveChecker>()
  readonly #templated = new Map<string, { readonly backend: Backend, readonly resolver: string }>()
  readonly #maxTemplated: number
  readonly #templateIdleMs: number
  #sweeper: NodeJS.Timeout | undefined
  readonly #ownListeners: OwnListeners

  constructor (config: GatewayConfig, deps: RegistryDeps) {
    this.#config = config
    this.#deps = deps
    this.#ownListeners = ownListeners(config)
    this.#maxTemplated = deps.maxTemplated ?? config.templatedBackends.max
    this.#templateIdleMs = deps.templateIdleMs ?? config.templatedBackends.idleTimeoutMs
    const observer = deps.dnsObserver ?? silentObserver
    // A reload keeps a resolver's cache when its settings did not change: last good answers
    // (and their staleness) survive, so a reload while DNS is down serves what was known.
    this.caches = new Map([...config.resolvers.values()].map((resolver) => {
      const kept = deps.previous === undefined ? undefined : deps.previous.#sameResolverCache(resolver)
      return [resolver.name, kept ?? makeCache(resolver, observer, deps)]
    }))
    for (const backend of config.backends.values()) {
      this.#static.set(backend.name, this.#create(backend.name, backend.discovery, backend))
    }
    // Only needed while building: keeping it would chain every registry since start.
    this.#deps = { ...deps, previous: undefined }
  }

  /** Start discovery for every static backend; resolves when each first resolution is done or has failed. */
  async start (): Promise<void> {
    await Promise.all([...this.#static.values()].map(async (backend) => { await backend.watcher.start() }))
    for (const backend of this.#static.values()) this.#checkers.get(backend)?.start()
    this.#sweeper = setInterval(() => { this.#reclaimIdle() }, Math.min(this.#templateIdleMs, 60_000))
    this.#sweeper.unref()
  }

  stop (): void {
    clearInterval(this.#sweeper)
    for (const backend of this.all()) backend.watcher.stop()
    for (const checker of this.#checkers.values()) checker.stop()
  }

  get (name: string): Backend | undefined { return this.#static.get(name) }

  /**
   * The backend a template makes for `env` (already checked against the
   * frontend's pattern). Its first resolution may still be running: await
   * `backend.watcher.start()`. Undefined when the bound is reached and no
   * templated backend is idle enough to give way.
   */
  template (template: BackendTemplateConfig, env: string): Backend | undefined {
    const name = template.template.replaceAll(ENV, env)
    const key = `${template.template}\u0000${env}`
    const existing = this.#templated.get(key)
    if (existing !== undefined) return existing.backend
    if (this.#templated.size >= this.#maxTemplated && !this.#evictOne()) return undefined
    const discovery = { ...template.discovery, name: template.discovery.name.replaceAll(ENV, env) }
    const backend = this.#create(name, discovery, template, template.template)
    this.#templated.set(key, { backend, resolver: discovery.resolver })
    void backend.watcher.start()
    this.#checkers.get(backend)?.start()
    return backend
  }

  /**
   * Every backend's last answer (templated ones too, so a restart while DNS
   * is down serves preview environments as well), to keep on disk.
   */
  savedSets (): SavedSet[] {
    const savedAt = new Date().toISOString()
    const resolverOf = new Map<Backend, string>([
      ...[...this.#static.values()].map((backend) => [backend, this.#resolverOfStatic(backend.name)] as const),
      ...[...this.#templated.values()].map((entry) => [entry.backend, entry.resolver] as const)
    ])
    return [...resolverOf].flatMap(([backend, resolver]) => {
      const resolution = backend.snapshot.resolution
      if (backend.snapshot.status !== 'answer' || resolution === undefined) return []
      return [{ lookup: backend.watcher.lookup, resolver, instances: resolution.instances, savedAt }]
    })
  }

  /** Seed the caches with saved sets (before start): served stale if DNS cannot be reached. */
  seed (sets: readonly SavedSet[]): number {
    let seeded = 0
    for (const set of sets) {
      // Files written before templated backends were kept name no resolver: a static backend's lookup says which.
      const resolver = set.resolver ?? [...this.#static.values()]
        .filter((backend) => lookupKey(backend.watcher.lookup) === lookupKey(set.lookup))
        .map((backend) => this.#resolverOfStatic(backend.name))[0]
      const cache = resolver === undefined ? undefined : this.caches.get(resolver)
      if (cache === undefined) continue
      cache.seed(set.lookup, { outcome: 'answer', instances: set.instances, ttlSeconds: undefined, nameserver: 'state-file', transport: 'udp', tcpReason: undefined })
      seeded++
    }
    return seeded
  }

  #sameResolverCache (resolver: ResolverConfig): ResolverCache | undefined {
    const before = this.#config.resolvers.get(resolver.name)
    return before !== undefined && JSON.stringify(before) === JSON.stringify(resolver) ? this.caches.get(resolver.name) : undefined
  }

  #resolverOfStatic (name: string): string {
    return this.#config.backends.get(name)?.discovery.resolver ?? ''
  }

  /** Every backend alive, static first. */
  all (): Backend[] { return [...this.#static.values(), ...[...this.#templated.values()].map((entry) => entry.backend)] }

  #create (name: string, discovery: DiscoveryConfig, options: BackendOptions, metricLabel?: string): Backend {
    const cache = this.caches.get(discovery.resolver)
    const resolver = this.#config.resolvers.get(discovery.resolver)
    if (cache === undefined || resolver === undefined) throw new Error(`backend ${name}: resolver ${discovery.resolver} missing (config/load.ts checks this)`)
    const lookup: Lookup = discovery.kind === 'srv' ? { kind: 'srv', name: discovery.name } : { kind: 'address', name: discovery.name, port: discovery.port }
    let backend: Backend | undefined
    const policy = new AddressPolicy([resolver.addressPolicy, options.addressPolicy], this.#ownListeners)
    const watcher = new DiscoveryWatcher({
      lookup,
      cache,
      refusal: (address, port) => policy.refusal(address, port),
      clock: this.#deps.clock,
      minIntervalMs: resolver.ttl.minMs,
      onChange: (snapshot, previous) => backend?.onDiscoveryChange(snapshot, previous),
      onError: this.#deps.onError
    })
    const health = this.#deps.previous?.all().find((old) => old.name === name)?.health
    backend = new Backend(name, options, watcher, { clock: this.#deps.clock, random: this.#deps.random, events: this.#deps.events, health, metricLabel })
    const check = options.healthCheck
    if (check !== undefined) {
      const checked = backend
      const checker = new ActiveChecker({
        check,
        instances: () => checked.set.instances,
        health: checked.health,
        random: this.#deps.random,
        onChange: (instance, isFailing) => {
          checked.healthChanged()
          this.#deps.events?.activeCheckChanged?.(name, instance, isFailing)
        }
      })
      this.#checkers.set(backend, checker)
    }
    return backend
  }

  #reclaimIdle (): void {
    const now = this.#deps.clock.now()
    for (const [key, { backend }] of this.#templated) {
      if (now - backend.lastUsedMs >= this.#templateIdleMs && backend.inFlight === 0) this.#remove(key)
    }
  }

  /** Make room: the least recently used templated backend with nothing in flight. */
  #evictOne (): boolean {
    let oldest: { key: string, lastUsedMs: number } | undefined
    for (const [key, { backend }] of this.#templated) {
      if (backend.inFlight > 0) continue
      if (oldest === undefined || backend.lastUsedMs < oldest.lastUsedMs) oldest = { key, lastUsedMs: backend.lastUsedMs }
    }
    if (oldest === undefined) return false
    this.#remove(oldest.key)
    return true
  }

  #remove (key: string): void {
    const entry = this.#templated.get(key)
    if (entry === undefined) return
    entry.backend.watcher.stop()
    this.#checkers.get(entry.backend)?.stop()
    this.#checkers.delete(entry.backend)
    this.caches.get(entry.resolver)?.delete(entry.backend.watcher.lookup)
    this.#templated.delete(key)
  }
}

function makeCache (resolver: ResolverConfig, observer: DnsObserver, deps: RegistryDeps): ResolverCache {
  const dns = new DnsResolver(resolver, new DnsTransport(observer), new TargetAddressCache({ ttl: resolver.targetTtl }, deps.clock))
  return new ResolverCache({
    resolver: dns,
    clock: deps.clock,
    random: deps.random,
    policy: { ttl: resolver.ttl, staleForMs: resolver.staleForMs, negativeTtlMs: resolver.negativeTtlMs, emptyGraceMs: resolver.emptyGraceMs },
    onBackgroundError: deps.onError,
    onRead: deps.onCacheRead
  })
}
