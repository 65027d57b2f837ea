import { refill, type BucketState } from '../util/token-bucket.js'
import { FrontendKeys } from './frontend-keys.js'

/** A frontend's rateLimit as the buckets need it. */
export type RateLimitTerms = { readonly perSecond: number, readonly burst: number, readonly maxKeys: number }

/** What a take gives: `granted` tokens (0: none), and when the next one will be there (ms; 0 when some were granted). */
export type Grant = { readonly granted: number, readonly retryAfterMs: number }

/**
 * The gateway's rate-limit buckets, exact, in the control plane (one
 * process: its data plane asks it directly; a cluster: every worker asks it
 * over IPC, policy/rate-limits.ts): a token bucket per frontend and key,
 * `burst` tokens filled at `perSecond`, made full on first use. A frontend's
 * keys are bounded by its maxKeys: the least recently seen is forgotten (it
 * comes back full, as after a quiet spell). The terms come with each take,
 * so a reload's new terms apply from the next request.
 */
export class RateBuckets {
  readonly #buckets = new FrontendKeys<BucketState>()

  /** Up to `want` tokens of `key`'s bucket under `frontend`. */
  take (frontend: string, key: string, want: number, terms: RateLimitTerms, nowMs: number): Grant {
    const bucket = this.#buckets.touch(frontend, key, terms.maxKeys, () => ({ tokens: terms.burst, atMs: nowMs }))
    refill(bucket, nowMs, terms.perSecond, terms.burst)
    const granted = Math.max(0, Math.min(want, Math.floor(bucket.tokens)))
    bucket.tokens -= granted
    return { granted, retryAfterMs: granted > 0 ? 0 : Math.ceil((1 - bucket.tokens) * 1000 / terms.perSecond) }
  }

  /** Keys held for `frontend` (for tests and /admin/state). */
  keysOf (frontend: string): number { return this.#buckets.sizeOf(frontend) }
}
