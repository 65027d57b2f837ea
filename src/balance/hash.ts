import type { Instance } from '../discovery/instance-set.js'
import type { Random } from '../util/random.js'
import type { BalancePolicy, PickContext } from './policy.js'

/** Points on the ring per unit of weight; weights are capped so one instance cannot flood the ring. */
const POINTS_PER_INSTANCE = 100
const MAX_WEIGHT_FACTOR = 4

type Ring = { readonly hashes: Uint32Array, readonly owners: readonly Instance[] }

/**
 * Consistent hashing on a ring (Ketama-style): each instance owns points
 * hashed from its key, so adding an instance moves only the keys that land
 * on its points, and removing one moves only its own. Requests without a key
 * (header missing) go to a random candidate.
 */
export class HashPolicy implements BalancePolicy {
  readonly #random: Random
  #ring: Ring | undefined
  #ringFor: readonly Instance[] | undefined

  constructor (random: Random) { this.#random = random }

  pick (candidates: readonly Instance[], context: PickContext): Instance {
    if (context.hashKey === undefined || candidates.length === 1) {
      return candidates[Math.floor(this.#random.next() * candidates.length)] as Instance
    }
    const ring = this.#ringOf(candidates)
    const point = hash32(context.hashKey)
    let low = 0
    let high = ring.hashes.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((ring.hashes[middle] as number) < point) low = middle + 1
      else high = middle
    }
    return ring.owners[low === ring.hashes.length ? 0 : low] as Instance
  }

  /** Built once per candidate list (the backend hands the same array until its set or health changes). */
  #ringOf (candidates: readonly Instance[]): Ring {
    if (this.#ring !== undefined && this.#ringFor === candidates) return this.#ring
    const points: Array<[number, Instance]> = []
    for (const instance of candidates) {
      // Absolute, not relative to the others: an instance joining must not move anyone else's points.
      const share = POINTS_PER_INSTANCE * Math.min(Math.max(instance.weight, 1), MAX_WEIGHT_FACTOR)
      for (let index = 0; index < share; index++) points.push([hash32(`${instance.key}#${index}`), instance])
    }
    points.sort((a, b) => a[0] - b[0])
    this.#ring = { hashes: Uint32Array.from(points.map((point) => point[0])), owners: points.map((point) => point[1]) }
    this.#ringFor = candidates
    return this.#ring
  }
}

/** FNV-1a with a murmur3 finalizer: fast, and spread well enough for ring points. */
export function hash32 (text: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}
