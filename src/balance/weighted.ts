import type { Instance } from '../discovery/instance-set.js'
import type { BalancePolicy } from './policy.js'

/**
 * Smooth weighted round-robin (nginx) over SRV weights: over a window of
 * Σweight picks each instance gets its weight's share, interleaved, not in
 * bursts. RFC 2782: weight 0 instances are picked only when every candidate
 * has weight 0 (then evenly). Priority groups are the backend's concern.
 */
export class WeightedPolicy implements BalancePolicy {
  readonly #current = new Map<string, number>()

  pick (candidates: readonly Instance[]): Instance {
    const allZero = candidates.every((instance) => instance.weight <= 0)
    let total = 0
    let best: Instance | undefined
    let bestWeight = -Infinity
    for (const instance of candidates) {
      const weight = allZero ? 1 : Math.max(instance.weight, 0)
      if (weight === 0) continue
      const current = (this.#current.get(instance.key) ?? 0) + weight
      this.#current.set(instance.key, current)
      total += weight
      if (current > bestWeight) { best = instance; bestWeight = current }
    }
    const chosen = best as Instance
    this.#current.set(chosen.key, bestWeight - total)
    if (this.#current.size > candidates.length * 4) this.#forgetGone(candidates)
    return chosen
  }

  /** Keep the state bounded by the instances still around. */
  #forgetGone (candidates: readonly Instance[]): void {
    const keys = new Set(candidates.map((instance) => instance.key))
    for (const key of this.#current.keys()) if (!keys.has(key)) this.#current.delete(key)
  }
}
