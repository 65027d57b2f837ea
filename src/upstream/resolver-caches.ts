import type { ResolverConfig } from '../config/types.js'
import { ResolverCache, TargetAddressCache, type CacheReadResult } from '../dns/cache.js'
import { DnsResolver } from '../dns/resolver.js'
import { DnsTransport } from '../dns/transport.js'
import { silentObserver, type DnsObserver } from '../dns/types.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'

export type ResolverCachesDeps = {
  readonly clock: Clock
  readonly random: Random
  readonly dnsObserver?: DnsObserver
  readonly onError?: (error: unknown) => void
  readonly onCacheRead?: (result: CacheReadResult) => void
}

/**
 * The one owner of resolver caches: one ResolverCache (over its DnsResolver,
 * transport and target cache) per configured resolver. A reload asks for the
 * next set with `next(resolvers)`: a resolver whose settings did not change
 * keeps its cache, so last good answers (and their staleness) survive it and
 * a reload while DNS is down serves what was known.
 */
export class ResolverCaches {
  readonly #caches: ReadonlyMap<string, { readonly settings: ResolverConfig, readonly cache: ResolverCache }>
  readonly #deps: ResolverCachesDeps

  constructor (resolvers: ReadonlyMap<string, ResolverConfig>, deps: ResolverCachesDeps, kept: ReadonlyMap<string, ResolverCache> = new Map()) {
    this.#deps = deps
    this.#caches = new Map([...resolvers.values()].map((settings) => [settings.name, { settings, cache: kept.get(settings.name) ?? makeCache(settings, deps) }]))
  }

  /** The caches for a new configuration, reusing those whose resolver settings are unchanged. */
  next (resolvers: ReadonlyMap<string, ResolverConfig>): ResolverCaches {
    const kept = new Map<string, ResolverCache>()
    for (const settings of resolvers.values()) {
      const current = this.#caches.get(settings.name)
      if (current !== undefined && sameResolver(current.settings, settings)) kept.set(settings.name, current.cache)
    }
    return new ResolverCaches(resolvers, this.#deps, kept)
  }

  get (resolver: string): ResolverCache | undefined { return this.#caches.get(resolver)?.cache }

  /** [resolver name, cache] pairs, for /admin/state. */
  entries (): Array<[string, ResolverCache]> { return [...this.#caches].map(([name, { cache }]) => [name, cache]) }
}

/** Same nameservers, timeouts, attempts, clamps and policy: the cache's answers still hold. */
function sameResolver (a: ResolverConfig, b: ResolverConfig): boolean {
  return a.name === b.name &&
    a.nameservers.length === b.nameservers.length && a.nameservers.every((address, index) => address.label === b.nameservers[index]?.label) &&
    a.timeoutMs === b.timeoutMs && a.attempts === b.attempts && a.ednsPayload === b.ednsPayload &&
    a.ttl.minMs === b.ttl.minMs && a.ttl.maxMs === b.ttl.maxMs && a.targetTtl.minMs === b.targetTtl.minMs && a.targetTtl.maxMs === b.targetTtl.maxMs &&
    a.staleForMs === b.staleForMs && a.negativeTtlMs === b.negativeTtlMs && a.emptyGraceMs === b.emptyGraceMs
}

function makeCache (resolver: ResolverConfig, deps: ResolverCachesDeps): ResolverCache {
  const dns = new DnsResolver(resolver, new DnsTransport(deps.dnsObserver ?? silentObserver), new TargetAddressCache({ ttl: resolver.targetTtl }, deps.clock))
  return new ResolverCache({
    resolver: dns,
    clock: deps.clock,
    random: deps.random,
    policy: { ttl: resolver.ttl, staleForMs: resolver.staleForMs, negativeTtlMs: resolver.negativeTtlMs, emptyGraceMs: resolver.emptyGraceMs },
    onBackgroundError: deps.onError,
    onRead: deps.onCacheRead
  })
}
