import type { BackendOptions, BackendTemplateConfig, DiscoveryConfig, GatewayConfig, TemplateSplitConfig } from '../config/types.js'
import type { CacheReadResult } from '../dns/cache.js'
import type { SavedSet } from '../discovery/state-file.js'
import type { Lookup } from '../dns/resolver.js'
import type { DnsObserver } from '../dns/types.js'
import type { HealthTable } from '../health/instance-health.js'
import { isoNow, type Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import type { Backend, BackendEvents, BackendParts, Outcome } from './backend.js'
import { ControlBackend } from './control-backend.js'
import { ReplicaBackend, type FactsSource } from './replica-backend.js'
import { DiscoveryWatcher, type DiscoverySnapshot, type DiscoverySource } from '../discovery/watcher.js'
import { AddressPolicy, ownListeners, type OwnListeners } from './address-policy.js'
import { ResolverCaches } from './resolver-caches.js'
import { ENV, TemplatedBackends, TemplateRefusal } from './templated-backends.js'
import { savedSetsOf, seedCaches, type ResolvedBackend } from './saved-sets.js'
import { Split } from './split.js'
import { ForwardedOutcomes } from './forwarded-outcomes.js'

export type RegistryDeps = {
  readonly clock: Clock
  readonly random: Random
  /** The resolver caches to use (the control plane owns them across reloads); default: new ones for this config. */
  readonly caches?: ResolverCaches
  /** The health table of the backend of this name before a reload, if any: ejections and checks survive it. */
  readonly healthOf?: (name: string) => HealthTable | undefined
  readonly dnsObserver?: DnsObserver
  readonly events?: BackendEvents
  readonly onError?: (error: unknown) => void
  readonly onCacheRead?: (result: CacheReadResult) => void
  /** Default: templatedBackends.max. */
  readonly maxTemplated?: number
  /** Default: templatedBackends.idleTimeout. */
  readonly templateIdleMs?: number
  /** A templated backend of this name was alive in the registry this one replaces: made again without spending newPerSecond. */
  readonly wasAlive?: (name: string) => boolean
  /** A new env got no templated backend (metrics). */
  readonly onTemplateRefused?: (reason: TemplateRefusal['reason']) => void
  /** Addresses never to be instances because they are our own listeners; default: the configuration's (srvgate/client has none). */
  readonly ownListeners?: OwnListeners
}

/**
 * The one read-only interface through which a data plane reads the control
 * plane's facts, in a worker or in the same process (cluster/control-facts.ts):
 * each backend's set, and whether a templated one was refused. Its passive
 * outcomes go back the same way; health facts are applied to its backends.
 */
export type ControlPlaneFacts = {
  /** The control plane's set of one backend; a templated one is asked for by template and env. */
  readonly discovery: (
    name: string,
    lookup: Lookup,
    onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void,
    template: { readonly template: string, readonly env: string, readonly onRefused: () => void } | undefined
  ) => FactsSource
  readonly report: (backend: string, key: string, outcome: Outcome) => void
}

/** What the registry knows of a backend it makes; a kind turns it into a ControlBackend or a ReplicaBackend. */
type BackendSpec = Omit<BackendParts, 'discovery'> & {
  readonly lookup: Lookup
  /** Its own DiscoveryWatcher on the resolver cache (what a ControlBackend watches). */
  readonly watch: (onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void) => DiscoverySource
  readonly templated: { readonly template: string, readonly env: string } | undefined
  readonly alternatives: (() => readonly Backend[]) | undefined
  /** The registry forgets this templated backend (the control plane refused it): the next request asks again. */
  readonly forget: () => void
}

type BackendKind<B extends Backend> = {
  readonly make: (spec: BackendSpec) => B
  /** templatedBackends.newPerSecond is spent here: where DNS is asked (the control plane, for every data plane). */
  readonly limitsNew: boolean
}

const CONTROL: BackendKind<ControlBackend> = {
  make: (spec) => new ControlBackend({ ...spec, discovery: spec.watch }),
  limitsNew: true
}

function replicaOf (facts: ControlPlaneFacts): BackendKind<ReplicaBackend> {
  return {
    make: (spec) => new ReplicaBackend({
      ...spec,
      discovery: (onChange) => facts.discovery(spec.name, spec.lookup, onChange, spec.templated === undefined ? undefined : { ...spec.templated, onRefused: spec.forget }),
      forwardOutcomes: new ForwardedOutcomes((key, outcome) => { facts.report(spec.name, key, outcome) })
    }),
    limitsNew: false
  }
}

/**
 * Every backend of one configuration by name: the static ones, warmed at
 * start, and the templated ones (TemplatedBackends owns them). It builds
 * backends (address policy, resolver cache, health carried over) and nothing
 * else: caches come from the control plane, the state file's sets from saved-sets.ts.
 * A control plane's registry holds ControlBackends; a data plane's holds
 * ReplicaBackends over the control plane's facts.
 */
export class BackendRegistry<B extends Backend = Backend> {
  readonly caches: ResolverCaches
  readonly #config: GatewayConfig
  readonly #deps: RegistryDeps
  readonly #kind: BackendKind<B>
  readonly #static = new Map<string, B>()
  /** The resolver of each static backend, failover targets included (the state file names it). */
  readonly #resolverOf = new Map<string, string>()
  readonly #splits = new Map<string, Split>()
  /** Templated splits per env, bounded like templated backends (least recently used first out). */
  readonly #templateSplits = new Map<string, Split>()
  readonly #templated: TemplatedBackends<B>
  readonly #ownListeners: OwnListeners

  /** The control plane's registry (and srvgate/client's): its backends watch DNS and decide health. */
  static control (config: GatewayConfig, deps: RegistryDeps): BackendRegistry<ControlBackend> {
    return new BackendRegistry(config, deps, CONTROL)
  }

  /** A data plane's registry: its backends follow the control plane's facts. */
  static replica (config: GatewayConfig, deps: RegistryDeps, facts: ControlPlaneFacts): BackendRegistry<ReplicaBackend> {
    return new BackendRegistry(config, deps, replicaOf(facts))
  }

  private constructor (config: GatewayConfig, deps: RegistryDeps, kind: BackendKind<B>) {
    this.#config = config
    this.#deps = deps
    this.#kind = kind
    this.#ownListeners = deps.ownListeners ?? ownListeners(config)
    this.caches = deps.caches ?? new ResolverCaches(config.resolvers, deps)
    const alternativeNames = staticAlternatives(config)
    for (const backend of config.backends.values()) {
      const alternatives = this.#staticBackends(alternativeNames.get(backend.name) ?? [])
      // Each failover target is a backend of its own (its discovery, health, and pools), named after the head.
      const failover = backend.failover.map((discovery, index) => this.#make(failoverName(backend.name, index), discovery, backend, undefined, undefined, alternatives))
      // The head first, then its targets in order: how the state and the dashboard list them.
      this.#addStatic(this.#make(backend.name, backend.discovery, backend, undefined, failover, alternatives), backend.discovery)
      backend.failover.forEach((discovery, index) => { this.#addStatic(failover[index] as B, discovery) })
    }
    for (const split of config.splits.values()) {
      this.#splits.set(split.name, new Split(split, (name) => this.#static.get(name) as Backend))
    }
    this.#templated = new TemplatedBackends({
      max: deps.maxTemplated ?? config.templatedBackends.max,
      idleMs: deps.templateIdleMs ?? config.templatedBackends.idleTimeoutMs,
      // Limited where DNS is asked: here, or in a cluster's primary for every worker (a worker's ask reaches it).
      newPerSecond: kind.limitsNew ? config.templatedBackends.newPerSecond : undefined,
      wasAlive: deps.wasAlive,
      onRefused: deps.onTemplateRefused,
      clock: deps.clock,
      caches: this.caches,
      make: (name, template, env) => this.#make(name, { ...template.discovery, name: template.discovery.name.replaceAll(ENV, env) }, template, { template: template.template, env }, undefined, this.#templateSiblings(template, env))
    })
  }

  /** Start every static backend; resolves when each first resolution is done or has failed. */
  async start (): Promise<void> {
    await Promise.all([...this.#static.values()].map(async (backend) => { await backend.start() }))
    this.#templated.start()
  }

  /** Start beside a running registry (a reload's candidate): stopped again if its start fails. */
  async startBeside (): Promise<void> {
    try {
      await this.start()
    } catch (error) {
      this.stop()
      throw error
    }
  }

  stop (): void {
    for (const backend of this.#static.values()) backend.stop()
    this.#templated.stop()
  }

  get (name: string): B | undefined { return this.#static.get(name) }

  /** A split backend by name (config.splits). */
  split (name: string): Split | undefined { return this.#splits.get(name) }

  /** Every split, in file order. */
  splits (): Split[] { return [...this.#splits.values()] }

  /**
   * The split a templated split makes for `env`: each member is the templated
   * backend of that env (made on first use, like any). A refusal when a
   * member cannot be made (newPerSecond spent, or the bound reached, all busy).
   */
  templateSplit (config: TemplateSplitConfig, env: string): Split | TemplateRefusal {
    const members: Backend[] = []
    for (const member of config.members) {
      const backend = this.#templated.get(member.template, env)
      if (backend instanceof TemplateRefusal) return backend
      members.push(backend)
    }
    const key = `${config.template}\u0000${env}`
    let split = this.#templateSplits.get(key)
    this.#templateSplits.delete(key)
    // A member reclaimed while idle and made again: the split is made again over the new one.
    if (split === undefined || !split.isOver(members)) {
      const byName = new Map(members.map((backend) => [backend.name, backend]))
      split = new Split({
        name: config.template.replaceAll(ENV, env),
        members: config.members.map((member, index) => ({ backend: (members[index] as Backend).name, weight: member.weight })),
        stickyOn: config.stickyOn
      }, (name) => byName.get(name) as Backend, config.template)
    }
    this.#templateSplits.set(key, split)
    if (this.#templateSplits.size > this.#config.templatedBackends.max) {
      const oldest = this.#templateSplits.keys().next().value
      if (oldest !== undefined) this.#templateSplits.delete(oldest)
    }
    return split
  }

  /** A static or alive templated backend by its name (`web-pr-1`). */
  named (name: string): B | undefined { return this.#static.get(name) ?? this.#templated.named(name) }

  /**
   * The backend a template makes for `env` (already checked against the
   * frontend's pattern). Its first resolution may still be running: await
   * `backend.ready()`. A refusal past templatedBackends.newPerSecond, or when
   * the bound is reached and no templated backend is idle enough to give way.
   */
  template (template: BackendTemplateConfig, env: string): B | TemplateRefusal {
    return this.#templated.get(template, env)
  }

  /** Every backend alive, static first. */
  all (): B[] { return this.#resolved().map(({ backend }) => backend) }

  /** The last answers of every backend, for the state file. */
  savedSets (): SavedSet[] { return savedSetsOf(this.#resolved(), isoNow(this.#deps.clock)) }

  /** Seed the caches with saved sets (before start). */
  seed (sets: readonly SavedSet[]): number {
    return seedCaches(this.caches, sets, this.#resolved().filter(({ backend }) => this.#static.get(backend.name) === backend))
  }

  #resolved (): Array<ResolvedBackend<B>> {
    return [
      ...[...this.#static.values()].map((backend) => ({ backend, resolver: this.#resolverOf.get(backend.name) ?? '' })),
      ...this.#templated.entries()
    ]
  }

  /** The static backends of these names, looked up once they are all made (on the first failure due for ejection). */
  #staticBackends (names: readonly string[]): () => readonly Backend[] {
    let backends: readonly Backend[] | undefined
    return () => (backends ??= names.flatMap((name) => this.#static.get(name) ?? []))
  }

  /** A templated backend's split siblings of the same env that are alive now (a templated split's other members). */
  #templateSiblings (template: BackendTemplateConfig, env: string): () => readonly Backend[] {
    const names: string[] = []
    for (const frontend of this.#config.frontends) {
      const target = frontend.backend
      if (target.kind !== 'template-split' || !target.split.members.some((member) => member.template === template)) continue
      for (const member of target.split.members) if (member.weight > 0 && member.template !== template) names.push(member.template.template.replaceAll(ENV, env))
    }
    return names.length === 0 ? () => [] : () => names.flatMap((name) => this.#templated.named(name) ?? [])
  }

  #addStatic (backend: B, discovery: DiscoveryConfig): void {
    this.#static.set(backend.name, backend)
    this.#resolverOf.set(backend.name, discovery.resolver)
  }

  #make (name: string, discovery: DiscoveryConfig, options: BackendOptions, templated?: { readonly template: string, readonly env: string }, failover?: readonly B[], alternatives?: () => readonly Backend[]): B {
    const cache = this.caches.get(discovery.resolver)
    const resolver = this.#config.resolvers.get(discovery.resolver)
    if (cache === undefined || resolver === undefined) throw new Error(`backend ${name}: resolver ${discovery.resolver} missing (config/references.ts checks this)`)
    const lookup: Lookup = discovery.kind === 'srv' ? { kind: 'srv', name: discovery.name } : { kind: 'address', name: discovery.name, port: discovery.port }
    const policy = new AddressPolicy([resolver.addressPolicy, options.addressPolicy], this.#ownListeners)
    const watch = (onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void): DiscoverySource => new DiscoveryWatcher({
      lookup,
      cache,
      refusal: (address, port) => policy.refusal(address, port),
      clock: this.#deps.clock,
      minIntervalMs: resolver.ttl.minMs,
      // The head of a failover chain takes traffic back within ttl.min of its instances returning.
      recheckEmptyMs: failover === undefined || failover.length === 0 ? undefined : resolver.ttl.minMs,
      onChange,
      onError: this.#deps.onError
    })
    return this.#kind.make({
      name,
      options,
      lookup,
      watch,
      templated,
      forget: () => { this.#templated.forget(name) },
      clock: this.#deps.clock,
      random: this.#deps.random,
      events: this.#deps.events,
      health: this.#deps.healthOf?.(name),
      metricLabel: templated?.template,
      failover,
      alternatives
    })
  }
}

/**
 * For each static backend, the backends whose own instances take its traffic
 * when it has none: the whole failover chain it belongs to (the head and
 * every target), and the chains of its siblings in every split it is a
 * member of with a weight (a weight-0 sibling gets no share).
 */
function staticAlternatives (config: GatewayConfig): Map<string, string[]> {
  const chain = (name: string): string[] => [name, ...(config.backends.get(name)?.failover ?? []).map((_, index) => failoverName(name, index))]
  const names = new Map<string, string[]>()
  for (const backend of config.backends.keys()) names.set(backend, chain(backend))
  for (const split of config.splits.values()) {
    for (const member of split.members) {
      const siblings = split.members.filter((other) => other.backend !== member.backend && other.weight > 0)
      names.get(member.backend)?.push(...siblings.flatMap((sibling) => chain(sibling.backend)))
    }
  }
  return names
}

/** `api~failover-1`: `~` is not allowed in configured names, so a target's name never clashes with one. */
export function failoverName (backend: string, index: number): string {
  return `${backend}~failover-${index + 1}`
}
