import type { BackendOptions } from '../config/types.js'
import type { BalancePolicy, PickContext } from '../balance/policy.js'
import { WeightedPolicy } from '../balance/weighted.js'
import { RoundRobinPolicy } from '../balance/round-robin.js'
import { LeastRequestPolicy } from '../balance/least-request.js'
import { RandomPolicy } from '../balance/random.js'
import { HashPolicy } from '../balance/hash.js'
import { pickWithSlowStart, type SlowStart } from '../balance/slow-start.js'
import type { Instance, InstanceSet } from '../discovery/instance-set.js'
import type { DiscoverySnapshot, DiscoverySource } from '../discovery/watcher.js'
import type { Lookup } from '../dns/resolver.js'
import { HealthTable } from '../health/instance-health.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import type { TemplateRefusal } from './templated-backends.js'

/** How one attempt on an instance ended (Envoy: local-origin failures vs upstream status). */
export type Outcome = 'success' | 'connect-failure' | 'timeout' | 'reset' | 'status-5xx'

/** What every backend is made of; the registry (static) and TemplatedBackends (per env) make them. */
export type BackendParts<Source extends DiscoverySource = DiscoverySource> = {
  readonly name: string
  readonly options: BackendOptions
  /**
   * Makes the backend's discovery source, told where to report changes: a
   * DiscoveryWatcher on the resolver cache (ControlBackend), or the control
   * plane's facts (ReplicaBackend).
   */
  readonly discovery: (onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void) => Source
  readonly clock: Clock
  readonly random: Random
  readonly events?: BackendEvents
  /** The health table of the backend of the same name before a reload: ejections and checks survive it. */
  readonly health?: HealthTable
  /** The name metrics use; default: the name. */
  readonly metricLabel?: string
  /** Backends of other datacenters, in order, that take over while this one has no usable instance. */
  readonly failover?: readonly Backend[]
}

/** One instance's health as the control plane decided it: a fact a data plane applies (cluster/protocol.ts carries it). */
export type HealthFact = {
  readonly key: string
  /** 0: not ejected. Relative, because each process has its own monotonic clock. */
  readonly ejectedForMs: number
  readonly ejections: number
  readonly isFailingActiveCheck: boolean
}

export type BackendEvents = {
  readonly instanceEjected?: (backend: string, instance: Instance, untilMs: number) => void
  readonly setChanged?: (backend: string, added: readonly Instance[], removed: readonly Instance[]) => void
  readonly activeCheckChanged?: (backend: string, instance: Instance, isFailing: boolean) => void
  /** The snapshot changed (set, status or staleness): the control plane sends it to the data planes. */
  readonly discoveryChanged?: (backend: string, snapshot: DiscoverySnapshot) => void
  /** An instance was ejected or crossed an active check's rise or fall (a ControlBackend decided): the control plane sends it on. */
  readonly healthChanged?: (backend: string, fact: HealthFact) => void
}

function createPolicy (name: BackendOptions['balance'], random: Random): BalancePolicy {
  switch (name) {
    case 'weighted': return new WeightedPolicy()
    case 'round-robin': return new RoundRobinPolicy()
    case 'least-request': return new LeastRequestPolicy(random)
    case 'random': return new RandomPolicy(random)
    case 'hash': return new HashPolicy(random)
  }
}

/**
 * A backend: the instance set discovery keeps fresh × per-instance health ×
 * a balance policy. `pick` is the hot path: it reads in-memory state only.
 * RFC 2782: the lowest priority group with a usable instance is used; higher
 * values are backups, used only when every instance before them is out.
 *
 * Who decides health is the subclass's one job: a ControlBackend runs the
 * active checks and judges passive outcomes (the control plane, srvgate/client);
 * a ReplicaBackend forwards its outcomes and applies what the control plane
 * decided (a data plane). Neither does the other's.
 */
export abstract class Backend<Source extends DiscoverySource = DiscoverySource> {
  readonly name: string
  /**
   * The name metrics use: the template (`web-{env}`) for templated backends, so a flood
   * of environments cannot grow label cardinality; the name otherwise.
   */
  readonly metricLabel: string
  readonly options: BackendOptions
  readonly watcher: Source
  readonly health: HealthTable
  /** The failover chain after this backend (Consul prepared-query failover): empty for most. */
  readonly failover: readonly Backend[]
  protected readonly clock: Clock
  protected readonly events: BackendEvents
  readonly #policy: BalancePolicy
  /** Usable instances per priority group, rebuilt when the set or an ejection changes. */
  #usable: ReadonlyArray<readonly Instance[]> = []
  #usableFor: InstanceSet | undefined
  #usableUntilMs = Infinity
  #lastUsedMs: number
  readonly #pickContext: PickContext
  readonly #slowStart: SlowStart | undefined
  /** Until then some usable instance is still ramping up (slow start); -Infinity: none is. */
  #warmingUntilMs = -Infinity

  constructor (parts: BackendParts<Source>) {
    const { name, options } = parts
    this.name = name
    this.metricLabel = parts.metricLabel ?? name
    // A reload hands over the previous backend's table: ejections and check results survive it.
    this.health = parts.health ?? new HealthTable()
    this.options = options
    // The backend wires its own discovery and checks: it owns what they change.
    this.watcher = parts.discovery((snapshot, previous) => { this.onDiscoveryChange(snapshot, previous) })
    this.#policy = createPolicy(options.balance, parts.random)
    this.clock = parts.clock
    this.events = parts.events ?? {}
    this.#lastUsedMs = parts.clock.now()
    this.failover = parts.failover ?? []
    this.#pickContext = { hashKey: undefined, inFlight: (instance) => this.health.peek(instance.key)?.inFlight ?? 0 }
    // balance: hash keeps its keys where they land: slow start would move them.
    this.#slowStart = options.slowStartMs === undefined || options.balance === 'hash'
      ? undefined
      : {
          durationMs: options.slowStartMs,
          warmFromMs: (instance) => this.health.peek(instance.key)?.warmFromMs ?? -Infinity,
          weightOf: options.balance === 'weighted' ? (instance) => Math.max(instance.weight, 0) : () => 1,
          random: parts.random
        }
  }

  /** Start discovery; resolves once the first resolution is done or has failed. */
  async start (): Promise<void> { await this.watcher.start() }

  stop (): void { this.watcher.stop() }

  get set (): InstanceSet { return this.watcher.snapshot.set }
  /** What this backend resolves. */
  get lookup (): Lookup { return this.watcher.lookup }
  /** The first resolution is done (or has failed into a known state). */
  get isReady (): boolean { return this.watcher.snapshot.status !== 'pending' }
  /** Resolves once the first resolution is done or has failed into a known state. */
  async ready (): Promise<void> { await this.watcher.start() }
  get snapshot (): DiscoverySnapshot { return this.watcher.snapshot }
  get lastUsedMs (): number { return this.#lastUsedMs }
  /** Used now (an idle templated backend is reclaimed by this). */
  protected touch (): void { this.#lastUsedMs = this.clock.now() }

  /**
   * Why this templated backend was refused after it was made: only a data
   * plane's can be (the control plane says so in a message of its own, and
   * route-request.ts answers with it). Undefined: not refused.
   */
  get refusal (): TemplateRefusal | undefined { return undefined }

  /** Requests in flight here: not idle. */
  get isBusy (): boolean { return this.inFlight > 0 }

  get inFlight (): number {
    let total = 0
    for (const record of this.health.values()) total += record.inFlight
    return total
  }

  /** Discovery changed: purge health of instances gone and idle. */
  protected onDiscoveryChange (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot): void {
    const { added, removed } = snapshot.set.diff(previous.set)
    // Slow start: an instance the backend's first answer held is no newcomer (a cold start holds nobody back).
    if (this.#slowStart !== undefined && previous.status !== 'pending') {
      const now = this.clock.now()
      for (const instance of added) this.health.get(instance.key).addedMs = now
    }
    if (added.length > 0 || removed.length > 0) this.events.setChanged?.(this.metricLabel, added, removed)
    this.health.purge((key) => snapshot.set.has(key))
    this.events.discoveryChanged?.(this.name, snapshot)
  }

  /** True when at least one instance could take a request now, here or in the failover chain. */
  hasUsableInstance (): boolean {
    return this.#hasOwnUsable(undefined) || this.failover.some((target) => target.#hasOwnUsable(undefined))
  }

  /** True when the chain (this backend, its failover targets) has a usable instance not in `tried`. */
  hasUntriedInstance (tried: ReadonlySet<string>): boolean {
    return this.#hasOwnUsable(tried) || this.failover.some((target) => target.#hasOwnUsable(tried))
  }

  /** This backend, not its failover chain, has a usable instance now. */
  hasOwnUsableInstance (): boolean { return this.#hasOwnUsable(undefined) }

  /**
   * The backend of the chain a request's next attempt goes to: this one while
   * it has a usable instance not yet tried, else the first failover target
   * that has one (Consul prepared-query order). Traffic returns here as soon
   * as this backend has a usable instance again.
   */
  serving (tried: ReadonlySet<string>): Backend {
    if (this.failover.length === 0 || this.#hasOwnUsable(tried)) return this
    return this.failover.find((target) => target.#hasOwnUsable(tried)) ?? this
  }

  /** Usable instances per priority group, lowest first (the DNS face tells them). */
  usableGroups (): ReadonlyArray<readonly Instance[]> { return this.#usableGroups() }

  #hasOwnUsable (tried: ReadonlySet<string> | undefined): boolean {
    for (const group of this.#usableGroups()) {
      if (tried === undefined || tried.size === 0) {
        if (group.length > 0) return true
      } else if (group.some((instance) => !tried.has(instance.key))) {
        return true
      }
    }
    return false
  }

  /**
   * Choose an instance, never one in `tried` (spec §3: never the same instance
   * twice for one request). Undefined when none is usable.
   */
  pick (tried: ReadonlySet<string>, hashKey: string | undefined): Instance | undefined {
    this.#lastUsedMs = this.clock.now()
    const context = hashKey === undefined ? this.#pickContext : { hashKey, inFlight: this.#pickContext.inFlight }
    for (const group of this.#usableGroups()) {
      const candidates = tried.size === 0 ? group : group.filter((instance) => !tried.has(instance.key))
      if (candidates.length === 0) continue
      const slowStart = this.#slowStart
      if (slowStart === undefined || candidates.length === 1) return this.#policy.pick(candidates, context)
      const now = this.clock.now()
      if (now >= this.#warmingUntilMs) return this.#policy.pick(candidates, context)
      return pickWithSlowStart(candidates, now, slowStart, this.#policy, context)
    }
    return undefined
  }

  begin (instance: Instance): void {
    this.health.get(instance.key).inFlight++
  }

  end (instance: Instance): void {
    const record = this.health.peek(instance.key)
    if (record !== undefined && record.inFlight > 0) record.inFlight--
  }

  /** Passive health: how one attempt on an instance ended (connect failures, timeouts, resets and 5xx count against it). */
  abstract report (instance: Instance, outcome: Outcome): void

  /** Health changed (an ejection, a check, the control plane's word): the usable groups are worked out again. */
  protected forgetUsable (): void { this.#usableFor = undefined }

  #usableGroups (): ReadonlyArray<readonly Instance[]> {
    const set = this.set
    const now = this.clock.now()
    if (this.#usableFor === set && now < this.#usableUntilMs) return this.#usable
    let until = Infinity
    let warmingUntil = -Infinity
    const slowStartMs = this.#slowStart?.durationMs ?? 0
    this.#usable = set.groups.map((group) => group.filter((instance) => {
      const record = this.health.peek(instance.key)
      if (record === undefined) return true
      if (record.isEjected(now)) { until = Math.min(until, record.ejectedUntilMs); return false }
      if (record.isFailingActiveCheck) return false
      warmingUntil = Math.max(warmingUntil, record.warmFromMs + slowStartMs)
      return true
    }))
    this.#usableFor = set
    this.#usableUntilMs = until
    this.#warmingUntilMs = warmingUntil
    return this.#usable
  }
}
