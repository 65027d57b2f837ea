import type { ResolverCache, CachedResolution } from '../dns/cache.js'
import type { Lookup } from '../dns/resolver.js'
import { DnsError } from '../errors.js'
import type { Clock, Timer } from '../util/clock.js'
import { InstanceSet } from './instance-set.js'
import { formatHostPort } from '../util/address.js'

/** Where a backend's discovery stands. */
export type DiscoveryStatus =
  | 'pending'   // first resolution not done yet
  | 'answer'    // instances known (possibly stale, see isStale)
  | 'empty'     // NXDOMAIN or no records: no instance
  | 'failed'    // DNS failed and nothing was left to serve

export type DiscoverySnapshot = {
  readonly status: DiscoveryStatus
  readonly set: InstanceSet
  readonly isStale: boolean
  readonly lastError: DnsError | undefined
  readonly resolution: CachedResolution | undefined
  /** Discovered instances the address policy refused, with why. */
  readonly refused: readonly RefusedInstance[]
}

export type RefusedInstance = { readonly key: string, readonly reason: string }

/**
 * Where a backend's instance set comes from: DNS through the resolver cache
 * (DiscoveryWatcher: one process, or a cluster's primary), or the primary's
 * view over IPC (cluster/control-facts.ts RemoteDiscovery: a worker).
 */
export interface DiscoverySource {
  readonly lookup: Lookup
  readonly snapshot: DiscoverySnapshot
  /** Resolves once the first snapshot is known (done or failed into a known state). */
  start: () => Promise<void>
  stop: () => void
  /** A connect failure suggests an instance moved: look again soon (rate-limited). */
  refreshSoon: () => void
}

export const PENDING_SNAPSHOT: DiscoverySnapshot = Object.freeze({ status: 'pending', set: InstanceSet.EMPTY, isStale: false, lastError: undefined, resolution: undefined, refused: [] })

export type WatcherOptions = {
  readonly lookup: Lookup
  readonly cache: ResolverCache
  readonly clock: Clock
  /** Called whenever the snapshot changes (set, status or staleness). */
  readonly onChange: (snapshot: DiscoverySnapshot, previous: DiscoverySnapshot) => void
  /** Never read the cache more often than this (the clamped TTL's floor). */
  readonly minIntervalMs: number
  readonly onError?: (error: unknown) => void
  /** Why an address may not be an instance (upstream/address-policy.ts); undefined admits it. */
  readonly refusal?: (address: string, port: number) => string | undefined
  /**
   * Ask DNS again this often while the answer is empty, past the negative
   * cache: the head of a failover chain takes its traffic back within ttl.min
   * of its instances returning, not after negativeTtl. Undefined: the cache decides.
   */
  readonly recheckEmptyMs?: number
}

/** Where in an answer's TTL the watcher reads the cache again. */
const READ_AT_FRACTION = 0.85
/** Never read the cache more often than this, whatever the TTL. */
const MIN_TICK_MS = 10

/** Refreshes asked for by connect failures are spaced at least this far apart. */
const MIN_FORCED_REFRESH_MS = 250

/**
 * Keeps one backend's instance set fresh in the background: it reads the
 * resolver cache every half clamped TTL (the cache refreshes ahead of expiry
 * and coalesces), so requests never wait on DNS in steady state. A connect
 * failure asks for a refresh now (rate-limited: never a query storm).
 */
export class DiscoveryWatcher implements DiscoverySource {
  readonly lookup: Lookup
  readonly #options: WatcherOptions
  #snapshot: DiscoverySnapshot = PENDING_SNAPSHOT
  #timer: Timer | undefined
  #isStopped = false
  #lastForcedMs = -Infinity
  #firstResolution: Promise<void> | undefined
  /** The last answer was empty and recheckEmptyMs is set: the next read asks DNS. */
  #isRecheckingEmpty = false

  constructor (options: WatcherOptions) {
    this.lookup = options.lookup
    this.#options = options
  }

  get snapshot (): DiscoverySnapshot { return this.#snapshot }

  /** Start watching; resolves once the first resolution is done or has failed into a known state. */
  start (): Promise<void> {
    this.#firstResolution ??= this.#tick()
    return this.#firstResolution
  }

  stop (): void {
    this.#isStopped = true
    this.#timer?.cancel()
  }

  /**
   * Refresh now (a connect failure suggests an instance moved), unless one was
   * asked for within the last 250 ms. Never throws. "Refresh" is the one word
   * for asking DNS again: the cache's refresh-ahead, a forced refresh, this.
   */
  refreshSoon (): void {
    const now = this.#options.clock.now()
    if (this.#isStopped || now - this.#lastForcedMs < MIN_FORCED_REFRESH_MS) return
    this.#lastForcedMs = now
    this.#options.cache.refresh(this.lookup).then(
      (resolution) => { this.#apply(resolution) },
      (error: unknown) => { this.#applyError(error) }
    )
  }

  async #tick (): Promise<void> {
    if (this.#isStopped) return
    let nextInMs = this.#options.minIntervalMs
    try {
      const cache = this.#options.cache
      const resolution = this.#isRecheckingEmpty ? await cache.refresh(this.lookup) : await cache.lookup(this.lookup)
      this.#apply(resolution)
      const recheckMs = this.#options.recheckEmptyMs
      this.#isRecheckingEmpty = recheckMs !== undefined && resolution.outcome !== 'answer'
      nextInMs = this.#isRecheckingEmpty ? Math.max(MIN_TICK_MS, recheckMs as number) : this.#nextReadInMs(resolution)
    } catch (error) {
      this.#applyError(error)
    }
    if (this.#isStopped) return
    this.#timer = this.#options.clock.setTimeout(() => { void this.#tick() }, nextInMs, { unref: true })
  }

  /**
   * Read again at 85% of the TTL: past the cache's refresh-ahead point (70-80%) and before
   * expiry, so the read starts the refresh and is served (a hit), never left to expire (a
   * miss). A read already past that point has just started the refresh: the next one comes
   * about halfway into the new answer's life.
   */
  #nextReadInMs (resolution: CachedResolution): number {
    const untilRefreshMs = resolution.receivedAtMs + resolution.ttlClampedMs * READ_AT_FRACTION - this.#options.clock.now()
    return Math.max(MIN_TICK_MS, untilRefreshMs > 0 ? untilRefreshMs : resolution.ttlClampedMs * 0.45)
  }

  #apply (resolution: CachedResolution): void {
    const refusal = this.#options.refusal
    const refused: RefusedInstance[] = []
    const admitted = refusal === undefined
      ? resolution.instances
      : resolution.instances.filter((instance) => {
        const reason = refusal(instance.address, instance.port)
        if (reason !== undefined) refused.push({ key: formatHostPort(instance.address, instance.port), reason })
        return reason === undefined
      })
    const set = resolution.outcome === 'answer' ? InstanceSet.fromDiscovered(admitted) : InstanceSet.EMPTY
    const previous = this.#snapshot
    // Keep the previous set object when nothing changed, so readers can compare by identity.
    const nextSet = set.equals(previous.set) ? previous.set : set
    this.#set({ status: resolution.outcome === 'answer' ? 'answer' : 'empty', set: nextSet, isStale: resolution.isStale, lastError: resolution.lastError, resolution, refused })
  }

  #applyError (error: unknown): void {
    if (!(error instanceof DnsError)) {
      this.#options.onError?.(error)
      return
    }
    this.#set({ status: 'failed', set: InstanceSet.EMPTY, isStale: false, lastError: error, resolution: undefined, refused: [] })
  }

  #set (snapshot: DiscoverySnapshot): void {
    const previous = this.#snapshot
    this.#snapshot = snapshot
    if (previous.set !== snapshot.set || previous.status !== snapshot.status || previous.isStale !== snapshot.isStale) {
      this.#options.onChange(snapshot, previous)
    }
  }
}
