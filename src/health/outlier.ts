import type { InstanceHealth } from './instance-health.js'

export type OutlierPolicy = {
  readonly consecutiveFailures: number
  readonly ejectForMs: number
  readonly maxEjectedPercent: number
}

/** Longest ejection, however many times an instance was ejected (Envoy's max_ejection_time default). */
export const MAX_EJECTION_MS = 300_000

/**
 * Passive health (Envoy outlier detection): `consecutiveFailures` connect
 * failures or 5xx in a row eject an instance for ejectFor × (ejections in a
 * row), capped at 5 minutes; no more than maxEjectedPercent of a backend's
 * instances are out at once, unless its traffic has somewhere else to go.
 * Healthy time decays the ejection count by one per ejectFor, lazily, when it
 * is next needed.
 */
export class OutlierDetector {
  readonly #policy: OutlierPolicy

  constructor (policy: OutlierPolicy) { this.#policy = policy }

  recordSuccess (health: InstanceHealth): void {
    health.consecutiveFailures = 0
  }

  /**
   * Count a failure; returns true when it ejected the instance.
   * `ejectedCount` and `total` describe the backend now, for the cap;
   * `hasAlternative` is asked only when the instance is due for ejection.
   */
  recordFailure (health: InstanceHealth, nowMs: number, ejectedCount: number, total: number, hasAlternative: () => boolean = () => false): boolean {
    health.consecutiveFailures++
    if (health.consecutiveFailures < this.#policy.consecutiveFailures || health.isEjected(nowMs)) return false
    if (!this.mayEject(ejectedCount, total, hasAlternative())) return false
    const { ejectForMs } = this.#policy
    const healthySinceMs = Math.max(health.ejectedUntilMs, 0)
    const decayed = health.ejectedUntilMs === 0 || ejectForMs === 0 ? 0 : Math.floor((nowMs - healthySinceMs) / ejectForMs)
    health.ejections = Math.max(0, health.ejections - decayed) + 1
    health.ejectedUntilMs = nowMs + Math.min(ejectForMs * health.ejections, MAX_EJECTION_MS)
    health.consecutiveFailures = 0
    return true
  }

  /**
   * maxEjectedPercent: one more ejection must keep the ejected share at or
   * under the cap. The cap keeps a backend from turning its instances' errors
   * into 503s when it has nowhere else to send them; with an alternative (a
   * split sibling or a failover target with a usable instance) there is
   * nothing to protect, and every failing instance may go, the last one
   * included, so the alternative takes the traffic (Envoy ejects at least one
   * host whatever the cap; HAProxy and nginx have no cap). 0 still means never.
   */
  mayEject (ejectedCount: number, total: number, hasAlternative = false): boolean {
    if (total === 0 || this.#policy.maxEjectedPercent === 0) return false
    if (hasAlternative) return ejectedCount < total
    return (ejectedCount + 1) * 100 <= this.#policy.maxEjectedPercent * total
  }
}
