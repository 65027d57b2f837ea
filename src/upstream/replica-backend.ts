import type { DiscoverySnapshot, DiscoverySource } from '../discovery/watcher.js'
import type { Instance } from '../discovery/instance-set.js'
import { Backend, type BackendParts, type HealthFact, type Outcome } from './backend.js'
import type { ForwardedOutcomes } from './forwarded-outcomes.js'
import type { TemplateRefusal } from './templated-backends.js'

/** A backend's set as the control plane's facts carry it, and the control plane's refusal to make it, if it refused. */
export interface FactsSource extends DiscoverySource {
  readonly refusal: TemplateRefusal | undefined
}

export type ReplicaBackendParts = BackendParts<FactsSource> & {
  /** Where its passive outcomes go: the control plane judges them once for every data plane. */
  readonly forwardOutcomes: ForwardedOutcomes
}

/**
 * A data plane's copy of a control plane's backend (Envoy: a worker's
 * read-only snapshot of a cluster). Its set comes from the control plane's
 * facts, its health is what the control plane decided (applyHealth), and it
 * decides nothing: it runs no check and forwards every outcome that matters.
 * It balances and counts requests in flight, which are its own.
 */
export class ReplicaBackend extends Backend<FactsSource> {
  readonly #forwarded: ForwardedOutcomes

  constructor (parts: ReplicaBackendParts) {
    super(parts)
    this.#forwarded = parts.forwardOutcomes
  }

  override get refusal (): TemplateRefusal | undefined { return this.watcher.refusal }

  report (instance: Instance, outcome: Outcome): void {
    this.#forwarded.report(instance.key, outcome)
  }

  /** Apply what the control plane decided of one instance. */
  applyHealth (fact: HealthFact): void {
    const record = this.health.get(fact.key)
    const now = this.clock.now()
    if (record.isFailingActiveCheck && !fact.isFailingActiveCheck) record.recoveredMs = now
    if (fact.ejectedForMs > 0) record.ejectedUntilMs = now + fact.ejectedForMs
    // Let back in early: the ejection ends now. A past end is kept: slow start ramps from it.
    else if (record.isEjected(now)) record.ejectedUntilMs = now
    record.ejections = fact.ejections
    record.isFailingActiveCheck = fact.isFailingActiveCheck
    this.forgetUsable()
  }

  protected override onDiscoveryChange (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot): void {
    super.onDiscoveryChange(snapshot, previous)
    this.#forwarded.retain((key) => snapshot.set.has(key))
  }
}
