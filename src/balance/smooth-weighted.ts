/**
 * Smooth weighted round-robin (nginx): over a window of Σweight picks each
 * entry gets its weight's share, interleaved, not in bursts. One rule for
 * the instances of a backend (WeightedPolicy) and the members of a split;
 * the state is kept per key, so entries may come and go between picks.
 */
export class SmoothWeighted<K> {
  readonly #current = new Map<K, number>()

  /**
   * Each entry with a positive weight gains its weight; the one now highest
   * (the first on a tie) is chosen and loses the sum of the weights. Entries
   * of weight 0 or less are passed over and keep their state; undefined
   * when no entry has a positive weight.
   */
  pick<T> (entries: readonly T[], keyOf: (entry: T, index: number) => K, weightOf: (entry: T) => number): T | undefined {
    let total = 0
    let best: T | undefined
    let bestKey: K | undefined
    let bestCurrent = -Infinity
    for (let index = 0; index < entries.length; index++) {
      const entry = entries[index] as T
      const weight = weightOf(entry)
      if (!(weight > 0)) continue
      const key = keyOf(entry, index)
      const current = (this.#current.get(key) ?? 0) + weight
      this.#current.set(key, current)
      total += weight
      if (best === undefined || current > bestCurrent) { best = entry; bestKey = key; bestCurrent = current }
    }
    if (best !== undefined) this.#current.set(bestKey as K, bestCurrent - total)
    return best
  }

  /** How many keys hold state. */
  get size (): number { return this.#current.size }

  /** Drops the state of every key not in `keys` (entries gone for good). */
  keepOnly (keys: ReadonlySet<K>): void {
    for (const key of this.#current.keys()) if (!keys.has(key)) this.#current.delete(key)
  }
}
