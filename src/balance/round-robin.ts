import type { Instance } from '../discovery/instance-set.js'
import type { BalancePolicy } from './policy.js'

/** Each candidate in turn, ignoring weights. */
export class RoundRobinPolicy implements BalancePolicy {
  #next = 0

  pick (candidates: readonly Instance[]): Instance {
    const chosen = candidates[this.#next % candidates.length] as Instance
    this.#next = (this.#next + 1) % 0x7fffffff
    return chosen
  }
}
