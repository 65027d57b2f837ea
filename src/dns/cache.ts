import { LRUCache } from 'lru-cache'
import { DnsError } from '../errors.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import type { Lookup, Resolver, TargetAddresses } from './resolver.js'
import { clampTtlMs, failureRecheck, graceRecheck, readAction, timesOfAnswer, timesOfNegative, type CachePolicy } from './cache-rules.js'

export type { CachePolicy } from './cache-rules.js'
import type { AddressRecord, Resolution } from './types.js'

/** What a read returns: the resolution served and how fresh it is. */
export type CachedResolution = Resolution & {
  /** True while the last good answer is served because DNS fails (staleFor). */
  readonly isStale: boolean
  /** True while a known set is kept through NXDOMAIN/empty answers (emptyGrace). */
  readonly isInEmptyGrace: boolean
  readonly ttlReceivedSeconds: number | undefined
  readonly ttlClampedMs: number
  /** When the resolution was received (Clock time). */
  readonly receivedAtMs: number
  /** The failure behind a stale answer. */
  readonly lastError: DnsError | undefined
}

export type CacheEntryView = CachedResolution & { readonly key: string, readonly lookup: Lookup, readonly ageMs: number }

/** lru-cache's fetch context: the lookup behind a key. (A plain union trips its overloads.) */
type FetchContext = { readonly lookup: Lookup }

type Entry = {
  readonly lookup: Lookup
  /** What is served; undefined when DNS failed and there was nothing to fall back on. */
  readonly resolution: Resolution | undefined
  readonly error: DnsError | undefined
  /** When `resolution` came from DNS. */
  readonly receivedAtMs: number
  /** When `resolution` stops being fresh; staleFor counts from here. */
  readonly goodUntilMs: number
  /** A read after this refreshes in the background (refresh-ahead). */
  readonly refreshAtMs: number
  /** A read after this waits for a new query. */
  readonly expiresAtMs: number
  readonly ttlClampedMs: number
  readonly isStale: boolean
  /** When a known set first met an empty answer; the grace counts from here. */
  readonly emptySinceMs: number | undefined
  /** What reads return, built once per entry: the hot path allocates nothing. */
  readonly served: CachedResolution | undefined
}

type EntryFields = Omit<Entry, 'served'>

export type ResolverCacheOptions = {
  readonly resolver: Resolver
  readonly policy: CachePolicy
  readonly clock: Clock
  readonly random: Random
  /** Most names kept (lru-cache `max`); the least recently read go first. */
  readonly maxEntries?: number
  /** Most negative answers kept apart (NXDOMAIN, empty); default 10,000. */
  readonly maxNegativeEntries?: number
  /** Called when a background refresh fails unexpectedly (DNS failures are entries, not errors). */
  readonly onBackgroundError?: (error: unknown) => void
  /** Counts reads: served fresh, served stale, or had to wait for DNS. */
  readonly onRead?: (result: CacheReadResult) => void
}

export type CacheReadResult = 'hit' | 'stale' | 'miss'


export function lookupKey (lookup: Lookup): string {
  return lookup.kind === 'srv' ? `SRV ${lookup.name}` : `A/AAAA ${lookup.name}:${lookup.port}`
}

/**
 * A bounded cache in front of a Resolver, with the rules that keep a gateway
 * both current and gentle on Consul:
 * - TTL clamped to ttl.min..ttl.max (Consul sends 0: never a query per read, never forever);
 * - refresh ahead of expiry in the background, jittered, one query per name in flight
 *   (lru-cache `fetch` coalesces concurrent reads);
 * - NXDOMAIN/empty cached for negativeTtl, but a known set survives them for emptyGrace;
 * - on SERVFAIL/timeout the last good answer is served, marked stale, for staleFor,
 *   re-asked no more often than ttl.min.
 * Time comes from the injected Clock, so every rule is a timeline in the unit tests.
 */
export class ResolverCache {
  readonly #lru: LRUCache<string, Entry, FetchContext>
  /**
   * NXDOMAIN and empty answers, kept apart and bounded: they outlive a
   * templated backend's reclaim (cycling many preview names cannot turn the
   * negative cache into a query per request) and cannot evict positive entries.
   */
  readonly #negative: LRUCache<string, Entry>
  readonly #policy: CachePolicy
  readonly #clock: Clock
  readonly #random: Random
  readonly #onBackgroundError: (error: unknown) => void
  readonly #onRead: (result: CacheReadResult) => void

  constructor (options: ResolverCacheOptions) {
    this.#policy = options.policy
    this.#clock = options.clock
    this.#random = options.random
    this.#onBackgroundError = options.onBackgroundError ?? (() => {})
    this.#onRead = options.onRead ?? (() => {})
    const resolver = options.resolver
    this.#lru = new LRUCache<string, Entry, FetchContext>({
      max: options.maxEntries ?? 10_000,
      // Expiry is ours (entries outlive their TTL to be served stale), so lru-cache keeps no TTL.
      ignoreFetchAbort: true,
      fetchMethod: async (_key, previous, { context }) => await this.#refresh(resolver, context?.lookup, previous)
    })
    this.#negative = new LRUCache<string, Entry>({ max: options.maxNegativeEntries ?? 10_000 })
  }

  /** Resolve through the cache. Throws DnsError only when DNS fails and nothing is left to serve. */
  async lookup (lookup: Lookup): Promise<CachedResolution> {
    const cached = this.peek(lookup)
    if (cached !== undefined) return cached
    const key = lookupKey(lookup)
    const negative = this.#negative.get(key)
    if (negative !== undefined && this.#clock.now() < negative.expiresAtMs && !this.#lru.has(key)) {
      this.#lru.set(key, negative)
      this.#onRead('hit')
      return this.#serve(negative)
    }
    this.#onRead('miss')
    const entry = await this.#lru.fetch(lookupKey(lookup), { forceRefresh: true, context: { lookup } }) as Entry
    return this.#serve(entry)
  }

  /**
   * The hot path: a map lookup, no I/O. Returns the cached resolution while it
   * may be served (starting a background refresh when it is due), or undefined
   * when the caller must wait for `lookup()`. Throws the cached DnsError while a
   * failure with nothing to fall back on is cached.
   */
  peek (lookup: Lookup): CachedResolution | undefined {
    const key = lookupKey(lookup)
    const entry = this.#lru.get(key)
    if (entry === undefined) return undefined
    const action = readAction(this.#clock.now(), entry)
    if (action === 'wait') return undefined
    if (action === 'serve-and-refresh') this.#refreshAhead(key, lookup)
    const served = this.#serve(entry)
    this.#onRead(served.isStale ? 'stale' : 'hit')
    return served
  }

  /** Start a refresh now unless one is in flight (the discovery watcher's tick). */
  refresh (lookup: Lookup): Promise<CachedResolution> {
    return this.#lru.fetch(lookupKey(lookup), { forceRefresh: true, context: { lookup } })
      .then((entry) => this.#serve(entry as Entry))
  }

  /**
   * Put a last-known answer in, marked stale, when nothing fresher is cached:
   * a gateway restarted while DNS is down serves it (for staleFor) instead of
   * failing. The next read asks DNS as usual.
   */
  seed (lookup: Lookup, resolution: Resolution): void {
    const key = lookupKey(lookup)
    const current = this.#lru.get(key)
    if (current?.served !== undefined && !current.served.isStale) return
    const now = this.#clock.now()
    this.#lru.set(key, entryOf({
      lookup, resolution, error: undefined, receivedAtMs: now, goodUntilMs: now,
      refreshAtMs: now, expiresAtMs: now, ttlClampedMs: 0, isStale: true, emptySinceMs: undefined
    }))
  }

  /** Forget a name (a templated backend reclaimed when idle). */
  delete (lookup: Lookup): void {
    this.#lru.delete(lookupKey(lookup))
  }

  /** Every entry, for /admin/state and the dashboard. */
  entries (): CacheEntryView[] {
    const now = this.#clock.now()
    const views: CacheEntryView[] = []
    // dump(), not entries(): entries() leaves out a name while its refresh is in flight
    // (lru-cache hides background fetches); dump() gives the value still being served.
    for (const [key, { value: entry }] of this.#lru.dump()) {
      if (entry.served === undefined) continue
      views.push({ ...entry.served, key, lookup: entry.lookup, ageMs: now - entry.receivedAtMs })
    }
    return views
  }

  get size (): number { return this.#lru.size }

  #refreshAhead (key: string, lookup: Lookup): void {
    this.#lru.fetch(key, { forceRefresh: true, allowStale: true, context: { lookup } }).catch(this.#onBackgroundError)
  }

  #serve (entry: Entry): CachedResolution {
    if (entry.served === undefined) throw entry.error as DnsError
    return entry.served
  }

  async #refresh (resolver: Resolver, lookup: Lookup | undefined, previous: Entry | undefined): Promise<Entry> {
    const target = lookup ?? previous?.lookup
    if (target === undefined) throw new Error('ResolverCache: a fetch without a lookup')
    try {
      const resolution = await resolver.resolve(target)
      const entry = this.#afterAnswer(target, resolution, previous, this.#clock.now())
      const key = lookupKey(target)
      if (entry.resolution?.outcome === 'answer') this.#negative.delete(key)
      else this.#negative.set(key, entry)
      return entry
    } catch (error) {
      if (!(error instanceof DnsError)) throw error
      return this.#afterFailure(target, error, previous, this.#clock.now())
    }
  }

  #afterAnswer (lookup: Lookup, resolution: Resolution, previous: Entry | undefined, now: number): Entry {
    const policy = this.#policy
    if (resolution.outcome === 'answer') {
      return entryOf({ lookup, resolution, error: undefined, receivedAtMs: now, ...timesOfAnswer(now, resolution.ttlSeconds, policy, this.#random.next()), isStale: false, emptySinceMs: undefined })
    }
    if (previous?.resolution?.outcome === 'answer') {
      // A brief NXDOMAIN (an instance re-registering, a Consul blip) must not empty a known set at once.
      const emptySinceMs = previous.emptySinceMs ?? now
      const grace = graceRecheck(now, emptySinceMs, policy)
      if (grace !== undefined) return entryOf({ ...previous, refreshAtMs: grace.recheckAtMs, expiresAtMs: grace.recheckAtMs, emptySinceMs })
    }
    return entryOf({ lookup, resolution, error: undefined, receivedAtMs: now, ...timesOfNegative(now, policy), isStale: false, emptySinceMs: undefined })
  }

  #afterFailure (lookup: Lookup, error: DnsError, previous: Entry | undefined, now: number): Entry {
    const { recheckAtMs, isStale } = failureRecheck(now, previous?.resolution === undefined ? undefined : previous.goodUntilMs, this.#policy)
    if (isStale && previous !== undefined) return entryOf({ ...previous, error, isStale: true, refreshAtMs: recheckAtMs, expiresAtMs: recheckAtMs })
    return entryOf({
      lookup, resolution: undefined, error, receivedAtMs: now, goodUntilMs: now,
      refreshAtMs: recheckAtMs, expiresAtMs: recheckAtMs, ttlClampedMs: 0, isStale: false, emptySinceMs: undefined
    })
  }
}

function entryOf (fields: EntryFields): Entry {
  const resolution = fields.resolution
  // Written out, not spread: object spread was measured at ~10 µs on Node 20 here.
  const served: CachedResolution | undefined = resolution === undefined
    ? undefined
    : {
        outcome: resolution.outcome,
        instances: resolution.instances,
        ttlSeconds: resolution.ttlSeconds,
        nameserver: resolution.nameserver,
        transport: resolution.transport,
        tcpReason: resolution.tcpReason,
        isStale: fields.isStale,
        isInEmptyGrace: fields.emptySinceMs !== undefined,
        ttlReceivedSeconds: resolution.ttlSeconds,
        ttlClampedMs: fields.ttlClampedMs,
        receivedAtMs: fields.receivedAtMs,
        lastError: fields.error
      }
  return { ...fields, served: served === undefined ? undefined : Object.freeze(served) }
}

export type TargetCachePolicy = { readonly ttl: { readonly minMs: number, readonly maxMs: number }, readonly maxEntries?: number }

type TargetEntry = { readonly records: readonly AddressRecord[], readonly expiresAtMs: number }

/**
 * Addresses of SRV targets that an answer's additional section left out,
 * cached by target name for their TTL clamped to `targetTtl` (node addresses
 * change far less often than instance sets), with one query per name in
 * flight, and at most `maxEntries` names. Without it, 200 targets cost 200
 * queries on every refresh of the SRV name.
 */
export class TargetAddressCache implements TargetAddresses {
  readonly #lru: LRUCache<string, TargetEntry>
  readonly #inFlight = new Map<string, Promise<readonly AddressRecord[]>>()
  readonly #policy: TargetCachePolicy
  readonly #clock: Clock

  constructor (policy: TargetCachePolicy, clock: Clock) {
    this.#policy = policy
    this.#clock = clock
    this.#lru = new LRUCache<string, TargetEntry>({ max: policy.maxEntries ?? 10_000 })
  }

  async addresses (target: string, query: () => Promise<readonly AddressRecord[]>): Promise<readonly AddressRecord[]> {
    const key = target.toLowerCase()
    const cached = this.#lru.get(key)
    if (cached !== undefined && this.#clock.now() < cached.expiresAtMs) return cached.records
    const running = this.#inFlight.get(key)
    if (running !== undefined) return await running
    const asking = query().then((records) => {
      const ttlSeconds = records.length === 0 ? 0 : Math.min(...records.map((record) => record.ttl))
      const ttlMs = clampTtlMs(ttlSeconds, this.#policy.ttl)
      this.#lru.set(key, { records, expiresAtMs: this.#clock.now() + ttlMs })
      return records
    }).finally(() => { this.#inFlight.delete(key) })
    this.#inFlight.set(key, asking)
    return await asking
  }

  get size (): number { return this.#lru.size }
}
