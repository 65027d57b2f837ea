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
import { ActiveChecker } from '../health/active-checker.js'
import { HealthTable } from '../health/instance-health.js'
import { OutlierDetector } from '../health/outlier.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import type { ForwardedOutcomes } from './forwarded-outcomes.js'

/** How one attempt on an instance ended (Envoy: local-origin failures vs upstream status). */
export type Outcome = 'success' | 'connect-failure' | 'timeout' | 'reset' | 'status-5xx'

/** What a backend is made of; the registry (static) and TemplatedBackends (per env) make them. */
export type BackendParts = {
  readonly name: string
  readonly options: BackendOptions
  /**
   * Makes the backend's discovery source, told where to report changes: a
   * DiscoveryWatcher on the resolver cache, or (a cluster worker) the primary's view.
   */
  readonly discovery: (onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void) => DiscoverySource
  /**
   * Passive outcomes go here instead of being judged locally: a cluster worker
   * sends them to the primary, which decides ejections once for every worker.
   */
  readonly forwardOutcomes?: ForwardedOutcomes
  /** Run active health checks in this process (default true; workers leave them to the primary). */
  readonly runsChecks?: boolean
  readonly clock: Clock
  readonly random: Random
  readonly events?: BackendEvents
  /** The health table of the backend of the same name before a reload: ejections and checks survive it. */
  readonly health?: HealthTable
  /** The name metrics use; default: the name. */
  readonly metricLabel?: string
  /** Backends of other datacenters, in order, that take over while this one has no usable instance. */
  readonly failover?: readonly Backend[]
  /**
   * Every backend whose own instances take this one's traffic when it has
   * none (its split siblings, the rest of its failover chain; itself may be
   * listed): while one has a usable instance, maxEjectedPercent does not hold
   * the last instances back (health/outlier.ts). Default: none.
   */
  readonly alternatives?: () => readonly Backend[]
}

/** What another process needs to know of one instance's health (cluster/protocol.ts carries it). */
export type HealthView = {
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
  /** The snapshot changed (set, status or staleness): a cluster primary sends it to the workers. */
  readonly discoveryChanged?: (backend: Backend) => void
  /** An instance was ejected or crossed an active check's rise or fall: a cluster primary sends it on. */
  readonly healthChanged?: (backend: Backend, key: string) => void
}

const noAlternatives = (): readonly Backend[] => []

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
 */
export class Backend {
  readonly name: string
  /**
   * The name metrics use: the template (`web-{env}`) for templated backends, so a flood
   * of environments cannot grow label cardinality; the name otherwise.
   */
  readonly metricLabel: string
  readonly options: BackendOptions
  readonly watcher: DiscoverySource
  readonly health: HealthTable
  /** The failover chain after this backend (Consul prepared-query failover): empty for most. */
  readonly failover: readonly Backend[]
  readonly #forwarded: ForwardedOutcomes | undefined
  readonly #alternatives: () => readonly Backend[]
  readonly #checker: ActiveChecker | undefined
  readonly #policy: BalancePolicy
  readonly #outlier: OutlierDetector
  readonly #clock: Clock
  readonly #events: BackendEvents
  /** Usable instances per priority group, rebuilt when the set or an ejection changes. */
  #usable: ReadonlyArray<readonly Instance[]> = []
  #usableFor: InstanceSet | undefined
  #usableUntilMs = Infinity
  #lastUsedMs: number
  #holders = 0
  readonly #pickContext: PickContext
  readonly #slowStart: SlowStart | undefined
  /** Until then some usable instance is still ramping up (slow start); -Infinity: none is. */
  #warmingUntilMs = -Infinity

  constructor (parts: BackendParts) {
    const { name, options } = parts
    this.name = name
    this.metricLabel = parts.metricLabel ?? name
    // A reload hands over the previous backend's table: ejections and check results survive it.
    this.health = parts.health ?? new HealthTable()
    this.options = options
    // The backend wires its own discovery and checks: it owns what they change.
    this.watcher = parts.discovery((snapshot, previous) => { this.#onDiscoveryChange(snapshot, previous) })
    this.#forwarded = parts.forwardOutcomes
    this.#policy = createPolicy(options.balance, parts.random)
    this.#outlier = new OutlierDetector(options.outlier)
    this.#clock = parts.clock
    this.#events = parts.events ?? {}
    this.#lastUsedMs = parts.clock.now()
    this.failover = parts.failover ?? []
    this.#alternatives = parts.alternatives ?? noAlternatives
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
    const check = options.healthCheck
    this.#checker = check === undefined || parts.runsChecks === false
      ? undefined
      : new ActiveChecker({
        check,
        instances: () => this.set.instances,
        health: this.health,
        random: parts.random,
        clock: parts.clock,
        onChange: (instance, isFailing) => {
          if (!isFailing) this.health.get(instance.key).recoveredMs = parts.clock.now()
          this.#usableFor = undefined
          this.#events.activeCheckChanged?.(name, instance, isFailing)
          this.#events.healthChanged?.(this, instance.key)
        }
      })
  }

  /** Start discovery and active checks; resolves once the first resolution is done or has failed. */
  async start (): Promise<void> {
    const first = this.watcher.start()
    this.#checker?.start()
    await first
  }

  stop (): void {
    this.watcher.stop()
    this.#checker?.stop()
  }

  get set (): InstanceSet { return this.watcher.snapshot.set }
  /** What this backend resolves. */
  get lookup (): Lookup { return this.watcher.lookup }
  /** The first resolution is done (or has failed into a known state). */
  get isReady (): boolean { return this.watcher.snapshot.status !== 'pending' }
  /** Resolves once the first resolution is done or has failed into a known state. */
  async ready (): Promise<void> { await this.watcher.start() }
  get snapshot (): DiscoverySnapshot { return this.watcher.snapshot }
  get lastUsedMs (): number { return this.#lastUsedMs }
  /**
   * Someone else uses this backend (a cluster worker holds a templated backend the
   * primary resolves for it): it must not be reclaimed while held.
   */
  hold (): void { this.#holders++ }
  release (): void {
    if (this.#holders > 0) this.#holders--
    this.#lastUsedMs = this.#clock.now()
  }

  /** Requests in flight here, or held by another process: not idle. */
  get isBusy (): boolean { return this.#holders > 0 || this.inFlight > 0 }

  get inFlight (): number {
    let total = 0
    for (const record of this.health.values()) total += record.inFlight
    return total
  }

  /** Discovery changed: purge health of instances gone and idle. */
  #onDiscoveryChange (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot): void {
    const { added, removed } = snapshot.set.diff(previous.set)
    // Slow start: an instance the backend's first answer held is no newcomer (a cold start holds nobody back).
    if (this.#slowStart !== undefined && previous.status !== 'pending') {
      const now = this.#clock.now()
      for (const instance of added) this.health.get(instance.key).addedMs = now
    }
    if (added.length > 0 || removed.length > 0) this.#events.setChanged?.(this.metricLabel, added, removed)
    this.health.purge((key) => snapshot.set.has(key))
    this.#forwarded?.retain((key) => snapshot.set.has(key))
    this.#events.discoveryChanged?.(this)
  }

  /** True when at least one instance could take a request now, here or in the failover chain. */
  hasUsableInstance (): boolean {
    return this.#hasOwnUsable(undefined) || this.failover.some((target) => target.#hasOwnUsable(undefined))
  }

  /** True when the chain (this backend, its failover targets) has a usable instance not in `tried`. */
  hasUntriedInstance (tried: ReadonlySet<string>): boolean {
    return this.#hasOwnUsable(tried) || this.failover.some((target) => target.#hasOwnUsable(tried))
  }

  /** Another backend would take this one's traffic now: one of its alternatives has a usable instance of its own. */
  readonly #hasAlternative = (): boolean => {
    for (const other of this.#alternatives()) if (other !== this && other.#hasOwnUsable(undefined)) return true
    return false
  }

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
    this.#lastUsedMs = this.#clock.now()
    const context = hashKey === undefined ? this.#pickContext : { hashKey, inFlight: this.#pickContext.inFlight }
    for (const group of this.#usableGroups()) {
      const candidates = tried.size === 0 ? group : group.filter((instance) => !tried.has(instance.key))
      if (candidates.length === 0) continue
      const slowStart = this.#slowStart
      if (slowStart === undefined || candidates.length === 1) return this.#policy.pick(candidates, context)
      const now = this.#clock.now()
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

  /** Passive health: connect failures, timeouts, resets and 5xx count against an instance. */
  report (instance: Instance, outcome: Outcome): void {
    if (this.#forwarded !== undefined) {
      this.#forwarded.report(instance.key, outcome)
      return
    }
    const record = this.health.get(instance.key)
    if (outcome === 'success') {
      this.#outlier.recordSuccess(record)
      return
    }
    const now = this.#clock.now()
    const set = this.set
    let ejected = 0
    for (const member of set.instances) if (this.health.peek(member.key)?.isEjected(now) === true) ejected++
    if (this.#outlier.recordFailure(record, now, ejected, set.size, this.#hasAlternative)) {
      this.#usableFor = undefined
      this.#events.instanceEjected?.(this.metricLabel, instance, record.ejectedUntilMs)
      this.#events.healthChanged?.(this, instance.key)
    }
    if (outcome === 'connect-failure') this.watcher.refreshSoon()
  }

  /** A report from another process (a cluster worker), by key; ignored for an instance no longer in the set. */
  reportKey (key: string, outcome: Outcome): void {
    const instance = this.set.get(key)
    if (instance !== undefined) this.report(instance, outcome)
    else if (outcome === 'connect-failure') this.watcher.refreshSoon()
  }

  /** One instance's health as another process needs it. */
  healthView (key: string): HealthView {
    const record = this.health.peek(key)
    const now = this.#clock.now()
    return {
      key,
      ejectedForMs: record === undefined || !record.isEjected(now) ? 0 : record.ejectedUntilMs - now,
      ejections: record?.ejections ?? 0,
      isFailingActiveCheck: record?.isFailingActiveCheck ?? false
    }
  }

  /** Every instance whose health is not plain "up", for a worker that starts. */
  healthViews (): HealthView[] {
    const views: HealthView[] = []
    for (const record of this.health.values()) {
      const view = this.healthView(record.key)
      if (view.ejectedForMs > 0 || view.isFailingActiveCheck) views.push(view)
    }
    return views
  }

  /** Apply what the primary decided (a cluster worker). */
  applyHealth (view: HealthView): void {
    const record = this.health.get(view.key)
    const now = this.#clock.now()
    if (record.isFailingActiveCheck && !view.isFailingActiveCheck) record.recoveredMs = now
    if (view.ejectedForMs > 0) record.ejectedUntilMs = now + view.ejectedForMs
    // Let back in early: the ejection ends now. A past end is kept: slow start ramps from it.
    else if (record.isEjected(now)) record.ejectedUntilMs = now
    record.ejections = view.ejections
    record.isFailingActiveCheck = view.isFailingActiveCheck
    this.#usableFor = undefined
  }

  #usableGroups (): ReadonlyArray<readonly Instance[]> {
    const set = this.set
    const now = this.#clock.now()
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
