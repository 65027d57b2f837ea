import { createHash } from 'node:crypto'
import type { RateLimitConfig } from '../config/types.js'
import { ErrorCode, ProxyError, withoutStack } from '../errors.js'
import type { Clock } from '../util/clock.js'
import type { Grant, RateLimitTerms } from './rate-buckets.js'
import type { RedisRates } from './redis-rates.js'
import { FrontendKeys } from './frontend-keys.js'

/** Ask the control plane's buckets (rate-buckets.ts) for up to `want` tokens of a key. */
export type AskTokens = (frontend: string, key: string, want: number, terms: RateLimitTerms) => Grant | Promise<Grant>

/** How long tokens handed to this process may wait to be spent: past it they are dropped, so no worker saves up a burst. */
export const LEASE_MS = 1000
/** Longer keys (a header's value) are held as their SHA-256: a map entry stays small. */
const LONGEST_KEY = 128

type Lease = { tokens: number, untilMs: number, emptyUntilMs: number }

/** Told when rateLimit.store.redis could not answer and the local limit decided instead (fail open). */
export type StoreFailure = (url: string, error: Error) => void

/**
 * A frontend's rateLimit for the whole gateway, not per worker. The control
 * plane holds the exact buckets; this process asks it for tokens and keeps
 * what it was given for LEASE_MS: at low rates one token a request (one IPC
 * round trip, ~0.1 ms), at high rates up to `want` at once (1/20 s of the
 * rate, at most a quarter of the burst), so a busy key costs one message per
 * `want` requests. A refusal is remembered until the control plane said a
 * token comes back, so a flood is refused here without asking again.
 *
 * Error bound: never more than burst + rate × t is let through in any
 * window t (every token comes from the one bucket); fewer by at most
 * (want − 1) per worker for each lease that ends unspent. Keys held here are
 * bounded by maxKeys, least recently seen forgotten first.
 */
export class RateLimits {
  readonly #ask: AskTokens
  readonly #clock: Clock
  readonly #leases = new FrontendKeys<Lease>()
  readonly #stores = new Map<string, Promise<RedisRates>>()
  readonly #storeFailed: StoreFailure
  /** The last refusal made for each frontend: a flood gets the same one (same Retry-After), not a new error a request. */
  readonly #refusals = new Map<string, ProxyError>()

  constructor (ask: AskTokens, clock: Clock, storeFailed: StoreFailure = () => {}) {
    this.#ask = ask
    this.#clock = clock
    this.#storeFailed = storeFailed
  }

  /**
   * Undefined: through; else the 429, with Retry-After. With
   * rateLimit.store.redis, Redis's bucket decides (every replica spends from
   * it); when Redis cannot answer within its timeout, this gateway's limit
   * decides instead, and the failure is reported.
   */
  take (frontend: string, limit: RateLimitConfig, rawKey: string): ProxyError | undefined | Promise<ProxyError | undefined> {
    const key = rawKey.length <= LONGEST_KEY ? rawKey : createHash('sha256').update(rawKey).digest('base64')
    const redis = limit.redis
    if (redis === undefined) return this.#takeHere(frontend, limit, key)
    return this.#store(redis.url, redis.timeoutMs).then(async (store) => await store.take(`${redis.prefix}${frontend}:${key}`, limit.requestsPerSecond, limit.burst)).then(
      (grant) => grant.granted >= 1 ? undefined : this.#limited(frontend, grant.retryAfterMs),
      (error: unknown) => {
        this.#storeFailed(redis.url, error as Error)
        return this.#takeHere(frontend, limit, key)
      })
  }

  /** Connect to the stores `frontends` name before their first request (a replica just started decides with Redis, not alone). */
  warm (frontends: ReadonlyArray<{ readonly rateLimit: RateLimitConfig | undefined }>): void {
    for (const { rateLimit } of frontends) {
      const redis = rateLimit?.redis
      if (redis !== undefined) this.#store(redis.url, redis.timeoutMs).catch(() => {})
    }
  }

  async close (): Promise<void> {
    for (const store of this.#stores.values()) (await store).close()
  }

  async #store (url: string, timeoutMs: number): Promise<RedisRates> {
    let store = this.#stores.get(url)
    if (store === undefined) {
      // ioredis is loaded only by a frontend that names a store.
      store = import('./redis-rates.js').then(({ RedisRates }) => new RedisRates(url, timeoutMs, this.#clock))
      this.#stores.set(url, store)
    }
    return await store
  }

  /** This gateway's limit: the control plane's buckets, leased. */
  #takeHere (frontend: string, limit: RateLimitConfig, key: string): ProxyError | undefined | Promise<ProxyError | undefined> {
    const now = this.#clock.now()
    const lease = this.#lease(frontend, key, limit.maxKeys)
    if (lease.untilMs <= now) lease.tokens = 0
    if (lease.tokens >= 1) {
      lease.tokens--
      return undefined
    }
    if (lease.emptyUntilMs > now) return this.#limited(frontend, lease.emptyUntilMs - now)
    const want = Math.max(1, Math.min(Math.floor(limit.requestsPerSecond / 20), Math.floor(limit.burst / 4)))
    const terms: RateLimitTerms = { perSecond: limit.requestsPerSecond, burst: limit.burst, maxKeys: limit.maxKeys }
    const asked = this.#ask(frontend, key, want, terms)
    return asked instanceof Promise ? asked.then((grant) => this.#granted(frontend, lease, grant)) : this.#granted(frontend, lease, asked)
  }

  #granted (frontend: string, lease: Lease, grant: Grant): ProxyError | undefined {
    const now = this.#clock.now()
    if (grant.granted < 1) {
      lease.emptyUntilMs = now + grant.retryAfterMs
      return this.#limited(frontend, grant.retryAfterMs)
    }
    // This request takes one; the rest wait here for the next ones, within the lease.
    lease.tokens = (lease.untilMs > now ? lease.tokens : 0) + grant.granted - 1
    lease.untilMs = now + LEASE_MS
    return undefined
  }

  /** The 429 for `frontend`, Retry-After in whole seconds (at least 1). */
  #limited (frontend: string, retryAfterMs: number): ProxyError {
    const retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000))
    const last = this.#refusals.get(frontend)
    if (last?.retryAfterS === retryAfterS) return last
    const made = withoutStack(() => new ProxyError(ErrorCode.RATE_LIMITED, `${frontend}: rateLimit spent`, undefined, { retryAfterS }))
    this.#refusals.set(frontend, made)
    return made
  }

  #lease (frontend: string, key: string, maxKeys: number): Lease {
    return this.#leases.touch(frontend, key, maxKeys, () => ({ tokens: 0, untilMs: 0, emptyUntilMs: 0 }))
  }
}
