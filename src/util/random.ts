/** Randomness as domain modules see it: `next()` in [0, 1). Injected so tests use fixed seeds. */
export interface Random {
  next (): number
}

export const systemRandom: Random = { next: () => Math.random() }

/** mulberry32: a small, fast, seedable generator for tests and benchmarks. */
export class SeededRandom implements Random {
  #state: number
  constructor (seed: number) { this.#state = seed >>> 0 }
  next (): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
