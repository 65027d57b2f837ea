import type { Clock } from '../util/clock.js'
import { sourceBlock } from '../util/cidr.js'
import { refill, type BucketState } from '../util/token-bucket.js'

/**
 * Blocks remembered: up to twice this, in two generations (a flood of
 * spoofed sources cannot grow memory). A block seen in the last generation
 * moves to the current one; when the current one is full the last is
 * dropped whole (quick-lru's scheme: no per-query reordering of a map).
 */
const GENERATION_SIZE = 10_000
/**
 * BIND's RRL defaults (ipv4-prefix-length 24, ipv6-prefix-length 56): one
 * bucket per block, so a sender cycling through the addresses it holds (a
 * /24 of hosts, an IPv6 site's /56) shares one burst instead of one each.
 */
const IPV4_BITS = 24
const IPV6_BITS = 56

export type RateLimits = {
  readonly perSecond: number
  readonly burst: number
  /** Answers per second over all sources, UDP only; also the global bucket's size (one second's worth). */
  readonly globalPerSecond: number
}

/** Why a query was not answered, or 'answer'. */
export type RateVerdict = 'answer' | 'source' | 'global'

type Bucket = BucketState

/**
 * A token bucket per source block (BIND's rate-limit, simplified): each /24
 * or /56 may send `burst` queries at once and `perSecond` after that. Over
 * them, one bucket for all UDP answers (`globalPerSecond`): spoofed sources
 * are free, and past MAX_SOURCES every new one would bring a fresh burst, so
 * only a global ceiling bounds what a flood costs and reflects. TCP stays
 * out of the global bucket (as BIND's RRL leaves TCP alone): its sources
 * cannot be spoofed, the connection caps bound it, and it is the way back
 * for a client a UDP flood crowds out. The limits are read on each query, so
 * a reload changes them at once.
 */
export class SourceRateLimit {
  readonly #clock: Clock
  readonly #limits: () => RateLimits
  #buckets = new Map<string, Bucket>()
  #previous = new Map<string, Bucket>()
  readonly #global: Bucket

  readonly #bits: { readonly ipv4: number, readonly ipv6: number }
  /** The last source and its key: a resolver sends many queries in a row, and the key is a string built per address. */
  #last = { source: '', key: '' }

  /**
   * `perAddress`: one bucket per address, not per block (TCP: a source that
   * cannot be spoofed is no reason to make its neighbours share its tokens).
   */
  constructor (clock: Clock, limits: () => RateLimits, options: { readonly perAddress?: boolean } = {}) {
    this.#clock = clock
    this.#limits = limits
    this.#global = { tokens: limits().globalPerSecond, atMs: clock.now() }
    this.#bits = options.perAddress === true ? { ipv4: 32, ipv6: 128 } : { ipv4: IPV4_BITS, ipv6: IPV6_BITS }
  }

  /** 'answer' when a query from `source` may be answered now (its tokens spent), else which limit refused it. */
  take (source: string, isUdp: boolean): RateVerdict {
    const { perSecond, burst, globalPerSecond } = this.#limits()
    const now = this.#clock.now()
    if (this.#last.source !== source) this.#last = { source, key: sourceBlock(source, this.#bits.ipv4, this.#bits.ipv6) }
    const key = this.#last.key
    const bucket = this.#bucket(key, now, burst)
    refill(bucket, now, perSecond, burst)
    if (bucket.tokens < 1) return 'source'
    if (isUdp) {
      refill(this.#global, now, globalPerSecond, globalPerSecond)
      if (this.#global.tokens < 1) return 'global'
      this.#global.tokens -= 1
    }
    bucket.tokens -= 1
    return 'answer'
  }

  /** The bucket of `key`: current, carried over from the last generation, or new and full. */
  #bucket (key: string, now: number, burst: number): Bucket {
    const current = this.#buckets.get(key)
    if (current !== undefined) return current
    const bucket = this.#previous.get(key) ?? { tokens: burst, atMs: now }
    if (this.#buckets.size >= GENERATION_SIZE) {
      this.#previous = this.#buckets
      this.#buckets = new Map()
    }
    this.#buckets.set(key, bucket)
    return bucket
  }
}
