import type { Instance } from '../discovery/instance-set.js'
import type { BalancePolicy } from './policy.js'
import { SmoothWeighted } from './smooth-weighted.js'

const keyOf = (instance: Instance): string => instance.key
const srvWeight = (instance: Instance): number => instance.weight
const even = (): number => 1

/**
 * Smooth weighted round-robin (nginx) over SRV weights. RFC 2782: weight 0
 * instances are picked only when every candidate has weight 0 (then evenly).
 * Priority groups are the backend's concern.
 */
export class WeightedPolicy implements BalancePolicy {
  readonly #rotation = new SmoothWeighted<string>()

  pick (candidates: readonly Instance[]): Instance {
    const allZero = candidates.every((instance) => instance.weight <= 0)
    const chosen = this.#rotation.pick(candidates, keyOf, allZero ? even : srvWeight) as Instance
    // Keep the state bounded by the instances still around.
    if (this.#rotation.size > candidates.length * 4) this.#rotation.keepOnly(new Set(candidates.map(keyOf)))
    return chosen
  }
}
