/**
 * The resolver cache's rules as pure functions over times (CoreDNS keeps them
 * in its item type): what a new answer, a negative answer or a failure means
 * for when an entry is served, refreshed and asked again. dns/cache.ts applies
 * them; `srvgate resolve` uses the same clamp. All times are Clock milliseconds.
 */

export type CachePolicy = {
  readonly ttl: { readonly minMs: number, readonly maxMs: number }
  readonly staleForMs: number
  readonly negativeTtlMs: number
  readonly emptyGraceMs: number
}

/** When an entry stops being fresh, is refreshed ahead, and must be asked again. */
export type EntryTimes = {
  /** Fresh until here; staleFor counts from here. */
  readonly goodUntilMs: number
  /** A read after this refreshes in the background. */
  readonly refreshAtMs: number
  /** A read after this waits for a new query. */
  readonly expiresAtMs: number
  readonly ttlClampedMs: number
}

/** Refresh ahead once less than 20–30% of the clamped TTL is left (CoreDNS calls it prefetch), jittered. */
const REFRESH_AT_FRACTION = 0.8
const REFRESH_JITTER_FRACTION = 0.1

/** CoreDNS-style clamp: Consul's TTL 0 becomes ttl.min, a day becomes ttl.max. */
export function clampTtlMs (ttlSeconds: number | undefined, ttl: CachePolicy['ttl']): number {
  return Math.min(Math.max((ttlSeconds ?? 0) * 1000, ttl.minMs), ttl.maxMs)
}

/** A fresh answer: served for its clamped TTL, refreshed ahead at 70–80% of it (`jitter` in [0, 1)). */
export function timesOfAnswer (nowMs: number, ttlSeconds: number | undefined, policy: CachePolicy, jitter: number): EntryTimes {
  const ttlClampedMs = clampTtlMs(ttlSeconds, policy.ttl)
  const refreshFraction = REFRESH_AT_FRACTION - REFRESH_JITTER_FRACTION * jitter
  return { goodUntilMs: nowMs + ttlClampedMs, refreshAtMs: nowMs + ttlClampedMs * refreshFraction, expiresAtMs: nowMs + ttlClampedMs, ttlClampedMs }
}

/** NXDOMAIN or no records: cached for negativeTtl. */
export function timesOfNegative (nowMs: number, policy: CachePolicy): EntryTimes {
  const ttlClampedMs = policy.negativeTtlMs
  return { goodUntilMs: nowMs + ttlClampedMs, refreshAtMs: nowMs + ttlClampedMs, expiresAtMs: nowMs + ttlClampedMs, ttlClampedMs }
}

/**
 * A negative answer for a name with a known set: kept through emptyGrace
 * (counted from the first empty answer), asked again every ttl.min within it.
 * Undefined once the grace is over: the negative answer stands.
 */
export function graceRecheck (nowMs: number, emptySinceMs: number, policy: CachePolicy): { readonly recheckAtMs: number } | undefined {
  const graceEndsMs = emptySinceMs + policy.emptyGraceMs
  if (nowMs >= graceEndsMs) return undefined
  return { recheckAtMs: Math.min(nowMs + policy.ttl.minMs, graceEndsMs) }
}

/**
 * DNS failed. With a last good answer still within staleFor (counted from
 * when it stopped being fresh), it is served stale until the next recheck
 * (every ttl.min). Without one, the failure itself is cached for ttl.min: a
 * failing Consul is asked no faster than that.
 */
export function failureRecheck (nowMs: number, lastGoodUntilMs: number | undefined, policy: CachePolicy): { readonly recheckAtMs: number, readonly isStale: boolean } {
  const recheckAtMs = nowMs + policy.ttl.minMs
  if (lastGoodUntilMs !== undefined) {
    const staleUntilMs = lastGoodUntilMs + policy.staleForMs
    if (nowMs < staleUntilMs) return { recheckAtMs: Math.min(recheckAtMs, staleUntilMs), isStale: true }
  }
  return { recheckAtMs, isStale: false }
}

/** What a read of an entry does now: serve it, serve it and refresh ahead, or wait for DNS. */
export function readAction (nowMs: number, times: Pick<EntryTimes, 'refreshAtMs' | 'expiresAtMs'>): 'serve' | 'serve-and-refresh' | 'wait' {
  if (nowMs >= times.expiresAtMs) return 'wait'
  return nowMs >= times.refreshAtMs ? 'serve-and-refresh' : 'serve'
}
