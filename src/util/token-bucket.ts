import type { Clock } from './clock.js'

/** A rate: `perSecond` on average, `burst` at once after a quiet time. */
export type BucketLimits = { readonly perSecond: number, readonly burst: number }

/** A bucket's state: the tokens it held at `atMs`. */
export type BucketState = { tokens: number, atMs: number }

/**
 * Bring `bucket` to `now`: `perSecond` tokens a second since it was last
 * filled, never more than `burst`. The one refill rule, for TokenBucket and
 * for buckets kept per key (dns-face/rate-limit.ts).
 */
export function refill (bucket: BucketState, now: number, perSecond: number, burst: number): void {
  // A clock that went back (it never should: monotonic) adds nothing.
  bucket.tokens = Math.min(burst, bucket.tokens + Math.max(0, now - bucket.atMs) * perSecond / 1000)
  bucket.atMs = now
}

/**
 * A token bucket on the injected clock (nginx's limit_req, BIND's
 * rate-limit): it holds up to `burst` tokens and gains `perSecond` of them
 * a second; each thing allowed spends one. Refilled lazily when asked, from
 * the time elapsed: no timer. The limits may be a function, read on each
 * call, so a reload changes them at once. Kept small for reuse: templated
 * backends' creation (upstream/templated-backends.ts) uses one; per-source
 * limits (dns-face/rate-limit.ts) and on-demand certificates can keep one
 * per key.
 */
export class TokenBucket {
  readonly #clock: Clock
  readonly #limits: () => BucketLimits
  readonly #bucket: BucketState

  constructor (clock: Clock, limits: BucketLimits | (() => BucketLimits)) {
    this.#clock = clock
    this.#limits = typeof limits === 'function' ? limits : () => limits
    this.#bucket = { tokens: this.#limits().burst, atMs: clock.now() }
  }

  /** True when a token was there, and is spent now. */
  take (): boolean {
    this.#refill()
    if (this.#bucket.tokens < 1) return false
    this.#bucket.tokens -= 1
    return true
  }

  /** Milliseconds until a token is there (0: one is there now). */
  waitMs (): number {
    this.#refill()
    const { tokens } = this.#bucket
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) * 1000 / this.#limits().perSecond)
  }

  #refill (): void {
    const { perSecond, burst } = this.#limits()
    refill(this.#bucket, this.#clock.now(), perSecond, burst)
  }
}
