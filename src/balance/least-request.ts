import type { Instance } from '../discovery/instance-set.js'
import type { Random } from '../util/random.js'
import type { BalancePolicy, PickContext } from './policy.js'

/** Power of two choices (Envoy's least_request): two random candidates, the one with fewer requests in flight. */
export class LeastRequestPolicy implements BalancePolicy {
  readonly #random: Random
  constructor (random: Random) { this.#random = random }

  pick (candidates: readonly Instance[], context: PickContext): Instance {
    if (candidates.length === 1) return candidates[0] as Instance
    const first = Math.floor(this.#random.next() * candidates.length)
    // A second index distinct from the first.
    const second = (first + 1 + Math.floor(this.#random.next() * (candidates.length - 1))) % candidates.length
    const a = candidates[first] as Instance
    const b = candidates[second] as Instance
    return context.inFlight(b) < context.inFlight(a) ? b : a
  }
}
