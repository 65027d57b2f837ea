import type { Instance } from '../discovery/instance-set.js'
import { ActiveChecker } from '../health/active-checker.js'
import { OutlierDetector } from '../health/outlier.js'
import { Backend, type BackendParts, type HealthFact, type Outcome } from './backend.js'

export type ControlBackendParts = BackendParts & {
  /**
   * Every backend whose own instances take this one's traffic when it has
   * none (its split siblings, the rest of its failover chain; itself may be
   * listed): while one has a usable instance, maxEjectedPercent does not hold
   * the last instances back (health/outlier.ts). Default: none.
   */
  readonly alternatives?: () => readonly Backend[]
}

const noAlternatives = (): readonly Backend[] => []

/**
 * A backend that decides its instances' health: it runs the active checks
 * and judges every passive outcome (outlier detection), once for every data
 * plane. The control plane's backends are these, and so are srvgate/client's,
 * which has no control plane but its own. What it decides goes out as
 * HealthFacts (healthFact), which a ReplicaBackend applies.
 */
export class ControlBackend extends Backend {
  readonly #alternatives: () => readonly Backend[]
  readonly #checker: ActiveChecker | undefined
  readonly #outlier: OutlierDetector
  #holders = 0

  constructor (parts: ControlBackendParts) {
    super(parts)
    this.#alternatives = parts.alternatives ?? noAlternatives
    this.#outlier = new OutlierDetector(parts.options.outlier)
    const check = parts.options.healthCheck
    this.#checker = check === undefined
      ? undefined
      : new ActiveChecker({
        check,
        speaks: parts.options,
        instances: () => this.set.instances,
        health: this.health,
        random: parts.random,
        clock: parts.clock,
        onChange: (instance, isFailing) => {
          if (!isFailing) this.health.get(instance.key).recoveredMs = parts.clock.now()
          this.forgetUsable()
          this.events.activeCheckChanged?.(this.name, instance, isFailing)
          this.events.healthChanged?.(this.name, this.healthFact(instance.key))
        }
      })
  }

  /** Start discovery and active checks; resolves once the first resolution is done or has failed. */
  override async start (): Promise<void> {
    const first = super.start()
    this.#checker?.start()
    await first
  }

  override stop (): void {
    super.stop()
    this.#checker?.stop()
  }

  /**
   * A data plane uses this backend (it holds a templated backend the control
   * plane resolves for it): it must not be reclaimed while held.
   */
  hold (): void { this.#holders++ }
  release (): void {
    if (this.#holders > 0) this.#holders--
    this.touch()
  }

  /** Requests in flight here, or held by a data plane: not idle. */
  override get isBusy (): boolean { return this.#holders > 0 || super.isBusy }

  /** Judge one outcome: a run of failures ejects the instance (health/outlier.ts); a connect failure looks up DNS again soon. */
  report (instance: Instance, outcome: Outcome): void {
    const record = this.health.get(instance.key)
    if (outcome === 'success') {
      this.#outlier.recordSuccess(record)
      return
    }
    const now = this.clock.now()
    const set = this.set
    let ejected = 0
    for (const member of set.instances) if (this.health.peek(member.key)?.isEjected(now) === true) ejected++
    if (this.#outlier.recordFailure(record, now, ejected, set.size, this.#hasAlternative)) {
      this.forgetUsable()
      this.events.instanceEjected?.(this.metricLabel, instance, record.ejectedUntilMs)
      this.events.healthChanged?.(this.name, this.healthFact(instance.key))
    }
    if (outcome === 'connect-failure') this.watcher.refreshSoon()
  }

  /** A data plane's outcome, by key; ignored for an instance no longer in the set. */
  reportKey (key: string, outcome: Outcome): void {
    const instance = this.set.get(key)
    if (instance !== undefined) this.report(instance, outcome)
    else if (outcome === 'connect-failure') this.watcher.refreshSoon()
  }

  /** One instance's health as a data plane needs it. */
  healthFact (key: string): HealthFact {
    const record = this.health.peek(key)
    const now = this.clock.now()
    return {
      key,
      ejectedForMs: record === undefined || !record.isEjected(now) ? 0 : record.ejectedUntilMs - now,
      ejections: record?.ejections ?? 0,
      isFailingActiveCheck: record?.isFailingActiveCheck ?? false
    }
  }

  /** Every instance whose health is not plain "up", for a data plane that starts. */
  healthFacts (): HealthFact[] {
    const facts: HealthFact[] = []
    for (const record of this.health.values()) {
      const fact = this.healthFact(record.key)
      if (fact.ejectedForMs > 0 || fact.isFailingActiveCheck) facts.push(fact)
    }
    return facts
  }

  /** Another backend would take this one's traffic now: one of its alternatives has a usable instance of its own. */
  readonly #hasAlternative = (): boolean => {
    for (const other of this.#alternatives()) if (other !== this && other.hasOwnUsableInstance()) return true
    return false
  }
}
