import { lookupKey } from '../dns/cache.js'
import type { SavedSet } from '../discovery/state-file.js'
import type { Backend } from './backend.js'
import type { ResolverCaches } from './resolver-caches.js'

/** A backend and the resolver it asks. */
export type ResolvedBackend<B extends Backend = Backend> = { readonly backend: B, readonly resolver: string }

/**
 * Every backend's last answer (templated ones too, so a restart while DNS is
 * down serves preview environments as well), to keep in the state file.
 */
export function savedSetsOf (backends: readonly ResolvedBackend[], savedAt: string): SavedSet[] {
  return backends.flatMap(({ backend, resolver }) => {
    const resolution = backend.snapshot.resolution
    if (backend.snapshot.status !== 'answer' || resolution === undefined) return []
    return [{ lookup: backend.lookup, resolver, instances: resolution.instances, savedAt }]
  })
}

/**
 * Seed the caches with saved sets (before start): served stale if DNS cannot
 * be reached. Files written before sets named their resolver are matched to a
 * static backend's lookup. Returns how many sets were seeded.
 */
export function seedCaches (caches: ResolverCaches, sets: readonly SavedSet[], staticBackends: readonly ResolvedBackend[]): number {
  let seeded = 0
  for (const set of sets) {
    const resolver = set.resolver ?? staticBackends.find(({ backend }) => lookupKey(backend.lookup) === lookupKey(set.lookup))?.resolver
    const cache = resolver === undefined ? undefined : caches.get(resolver)
    if (cache === undefined) continue
    cache.seed(set.lookup, { outcome: 'answer', instances: set.instances, ttlSeconds: undefined, nameserver: 'state-file', transport: 'udp', tcpReason: undefined })
    seeded++
  }
  return seeded
}
