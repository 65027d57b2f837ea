import type { Instance } from '../discovery/instance-set.js'
import type { Random } from '../util/random.js'
import type { BalancePolicy } from './policy.js'

/** A uniformly random candidate. */
export class RandomPolicy implements BalancePolicy {
  readonly #random: Random
  constructor (random: Random) { this.#random = random }

  pick (candidates: readonly Instance[]): Instance {
    return candidates[Math.floor(this.#random.next() * candidates.length)] as Instance
  }
}
