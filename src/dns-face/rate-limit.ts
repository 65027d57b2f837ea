import type { Clock } from '../util/clock.js'

/** Sources remembered at once; beyond it the longest unseen is forgotten (a flood of spoofed sources cannot grow memory). */
const MAX_SOURCES = 10_000

type Bucket = { tokens: number, atMs: number }

/**
 * A token bucket per source address (BIND's rate-limit, simplified): each
 * source may send `burst` queries at once and `perSecond` after that. The
 * limits are read on each query, so a reload changes them at once.
 */
export class SourceRateLimit {
  readonly #clock: Clock
  readonly #limits: () => { readonly perSecond: number, readonly burst: number }
  readonly #buckets = new Map<string, Bucket>()

  constructor (clock: Clock, limits: () => { readonly perSecond: number, readonly burst: number }) {
    this.#clock = clock
    this.#limits = limits
  }

  /** True when `source` may be answered now (a token is spent). */
  take (source: string): boolean {
    const { perSecond, burst } = this.#limits()
    const now = this.#clock.now()
    let bucket = this.#buckets.get(source)
    if (bucket === undefined) {
      bucket = { tokens: burst, atMs: now }
      if (this.#buckets.size >= MAX_SOURCES) {
        const oldest = this.#buckets.keys().next().value
        if (oldest !== undefined) this.#buckets.delete(oldest)
      }
    } else {
      // Re-inserted: the map's order is "least recently seen first".
      this.#buckets.delete(source)
      bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.atMs) * perSecond / 1000)
      bucket.atMs = now
    }
    this.#buckets.set(source, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }
}
