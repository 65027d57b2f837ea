import type { Clock } from './clock.js'

/** A rate: `perSecond` on average, `burst` at once after a quiet time. */
export type BucketLimits = { readonly perSecond: number, readonly burst: number }

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
  #tokens: number
  #atMs: number

  constructor (clock: Clock, limits: BucketLimits | (() => BucketLimits)) {
    this.#clock = clock
    this.#limits = typeof limits === 'function' ? limits : () => limits
    this.#tokens = this.#limits().burst
    this.#atMs = clock.now()
  }

  /** True when a token was there, and is spent now. */
  take (): boolean {
    this.#refill()
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Milliseconds until a token is there (0: one is there now). */
  waitMs (): number {
    this.#refill()
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * 1000 / this.#limits().perSecond)
  }

  #refill (): void {
    const { perSecond, burst } = this.#limits()
    const now = this.#clock.now()
    // A clock that went back (it never should: monotonic) adds nothing.
    this.#tokens = Math.min(burst, this.#tokens + Math.max(0, now - this.#atMs) * perSecond / 1000)
    this.#atMs = now
  }
}
