import type { BackendTemplateConfig } from '../config/types.js'
import type { ResolverCaches } from './resolver-caches.js'
import type { Backend } from './backend.js'
import type { Clock, Timer } from '../util/clock.js'
import { TokenBucket } from '../util/token-bucket.js'

export type TemplatedBackendsOptions<B extends Backend> = {
  /** Most alive at once (templatedBackends.max): a flood of hosts cannot grow memory. */
  readonly max: number
  /** One unused this long is reclaimed (templatedBackends.idleTimeout). */
  readonly idleMs: number
  readonly clock: Clock
  readonly caches: ResolverCaches
  /**
   * New ones made per second at most (templatedBackends.newPerSecond; burst:
   * the same number); undefined: not limited here (a cluster worker: the
   * primary, which asks DNS, limits for every worker).
   */
  readonly newPerSecond?: number | undefined
  /** A backend of this name was alive before the reload that made this pool: made again without a token. */
  readonly wasAlive?: ((name: string) => boolean) | undefined
  /** A new env got no backend, and why (metrics). */
  readonly onRefused?: ((reason: TemplateRefusal['reason']) => void) | undefined
  /** Makes the backend for one env (the registry knows how backends are built). */
  readonly make: (name: string, template: BackendTemplateConfig, env: string) => B
}

/**
 * Why a new env got no backend: `bound` (templatedBackends.max reached with
 * every one busy) or `rate` (templatedBackends.newPerSecond spent; the next
 * token comes in retryAfterMs). An expected outcome, so a value, not a throw.
 */
export class TemplateRefusal {
  readonly reason: 'bound' | 'rate'
  readonly retryAfterMs: number
  constructor (reason: 'bound' | 'rate', retryAfterMs = 0) {
    this.reason = reason
    this.retryAfterMs = retryAfterMs
  }
}

const BOUND = new TemplateRefusal('bound')

type Entry<B extends Backend> = { readonly backend: B, readonly resolver: string }

export const ENV = '{env}'

/**
 * The one owner of templated backends (`web-{env}`): made on first use,
 * started at once, bounded in number (the least recently used idle one makes
 * room; if all are busy, none is made) and in rate (a token bucket: a flood
 * of names cannot turn into a flood of DNS queries), reclaimed when idle. A reclaimed
 * backend's cache entry goes too (negative answers stay: dns/cache.ts keeps
 * them apart, so cycling names cannot turn into a query per request).
 */
export class TemplatedBackends<B extends Backend> {
  readonly #options: TemplatedBackendsOptions<B>
  readonly #entries = new Map<string, Entry<B>>()
  readonly #bucket: TokenBucket | undefined
  #sweeper: Timer | undefined
  #isStopped = false

  constructor (options: TemplatedBackendsOptions<B>) {
    this.#options = options
    // Burst = one second's worth: a handful of previews opened together (a CI run, a review page) is
    // made at once; a flood is held to the rate after its first second.
    this.#bucket = options.newPerSecond === undefined ? undefined : new TokenBucket(options.clock, { perSecond: options.newPerSecond, burst: options.newPerSecond })
  }

  /** Sweep for idle backends every min(idleTimeout, 1 minute). */
  start (): void {
    const every = Math.min(this.#options.idleMs, 60_000)
    const sweep = (): void => {
      if (this.#isStopped) return
      this.reclaimIdle()
      this.#sweeper = this.#options.clock.setTimeout(sweep, every, { unref: true })
    }
    this.#sweeper = this.#options.clock.setTimeout(sweep, every, { unref: true })
  }

  stop (): void {
    this.#isStopped = true
    this.#sweeper?.cancel()
    for (const { backend } of this.#entries.values()) backend.stop()
  }

  /** The backend for `env`, made on first use; a refusal past newPerSecond, or at the bound with every one busy. */
  get (template: BackendTemplateConfig, env: string): B | TemplateRefusal {
    const key = `${template.template}\u0000${env}`
    const existing = this.#entries.get(key)
    if (existing !== undefined) return existing.backend
    const name = template.template.replaceAll(ENV, env)
    // The rate first: a refused name must not evict an idle backend on its way out.
    const bucket = this.#bucket
    if (bucket !== undefined && this.#options.wasAlive?.(name) !== true && !bucket.take()) return this.#refuse(new TemplateRefusal('rate', bucket.waitMs()))
    if (this.#entries.size >= this.#options.max && !this.#evictOne()) return this.#refuse(BOUND)
    const backend = this.#options.make(name, template, env)
    this.#entries.set(key, { backend, resolver: template.discovery.resolver })
    void backend.start()
    return backend
  }

  /** The alive backend of this name (a cluster worker applying what the primary sent); bounded by max. */
  named (name: string): B | undefined {
    for (const { backend } of this.#entries.values()) if (backend.name === name) return backend
    return undefined
  }

  /** Drop the backend of this name now (a cluster primary refused to make it). */
  forget (name: string): void {
    for (const [key, { backend }] of this.#entries) if (backend.name === name) this.#remove(key)
  }

  /** Every templated backend alive, with its resolver. */
  entries (): Array<Entry<B>> { return [...this.#entries.values()] }

  /** Reclaim every backend unused for idleMs with nothing in flight (the sweeper's job; a test calls it too). */
  reclaimIdle (): void {
    const now = this.#options.clock.now()
    for (const [key, { backend }] of this.#entries) {
      if (now - backend.lastUsedMs >= this.#options.idleMs && !backend.isBusy) this.#remove(key)
    }
  }

  #refuse (refusal: TemplateRefusal): TemplateRefusal {
    this.#options.onRefused?.(refusal.reason)
    return refusal
  }

  /** Make room: the least recently used templated backend with nothing in flight. */
  #evictOne (): boolean {
    let oldest: { key: string, lastUsedMs: number } | undefined
    for (const [key, { backend }] of this.#entries) {
      if (backend.isBusy) continue
      if (oldest === undefined || backend.lastUsedMs < oldest.lastUsedMs) oldest = { key, lastUsedMs: backend.lastUsedMs }
    }
    if (oldest === undefined) return false
    this.#remove(oldest.key)
    return true
  }

  #remove (key: string): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    entry.backend.stop()
    this.#options.caches.get(entry.resolver)?.delete(entry.backend.lookup)
    this.#entries.delete(key)
  }
}
