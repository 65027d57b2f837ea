import type { BackendTemplateConfig } from '../config/types.js'
import type { ResolverCaches } from './resolver-caches.js'
import type { Backend } from './backend.js'
import type { Clock, Timer } from '../util/clock.js'

export type TemplatedBackendsOptions = {
  /** Most alive at once (templatedBackends.max): a flood of hosts cannot grow memory. */
  readonly max: number
  /** One unused this long is reclaimed (templatedBackends.idleTimeout). */
  readonly idleMs: number
  readonly clock: Clock
  readonly caches: ResolverCaches
  /** Makes the backend for one env (the registry knows how backends are built). */
  readonly make: (name: string, template: BackendTemplateConfig, env: string) => Backend
}

type Entry = { readonly backend: Backend, readonly resolver: string }

export const ENV = '{env}'

/**
 * The one owner of templated backends (`web-{env}`): made on first use,
 * started at once, bounded in number (the least recently used idle one makes
 * room; if all are busy, none is made), reclaimed when idle. A reclaimed
 * backend's cache entry goes too (negative answers stay: dns/cache.ts keeps
 * them apart, so cycling names cannot turn into a query per request).
 */
export class TemplatedBackends {
  readonly #options: TemplatedBackendsOptions
  readonly #entries = new Map<string, Entry>()
  #sweeper: Timer | undefined
  #isStopped = false

  constructor (options: TemplatedBackendsOptions) { this.#options = options }

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

  /** The backend for `env`, made on first use; undefined at the bound with every one busy. */
  get (template: BackendTemplateConfig, env: string): Backend | undefined {
    const key = `${template.template}\u0000${env}`
    const existing = this.#entries.get(key)
    if (existing !== undefined) return existing.backend
    if (this.#entries.size >= this.#options.max && !this.#evictOne()) return undefined
    const backend = this.#options.make(template.template.replaceAll(ENV, env), template, env)
    this.#entries.set(key, { backend, resolver: template.discovery.resolver })
    void backend.start()
    return backend
  }

  /** The alive backend of this name (a cluster worker applying what the primary sent); bounded by max. */
  named (name: string): Backend | undefined {
    for (const { backend } of this.#entries.values()) if (backend.name === name) return backend
    return undefined
  }

  /** Drop the backend of this name now (a cluster primary refused to make it). */
  forget (name: string): void {
    for (const [key, { backend }] of this.#entries) if (backend.name === name) this.#remove(key)
  }

  /** Every templated backend alive, with its resolver. */
  entries (): Entry[] { return [...this.#entries.values()] }

  /** Reclaim every backend unused for idleMs with nothing in flight (the sweeper's job; a test calls it too). */
  reclaimIdle (): void {
    const now = this.#options.clock.now()
    for (const [key, { backend }] of this.#entries) {
      if (now - backend.lastUsedMs >= this.#options.idleMs && !backend.isBusy) this.#remove(key)
    }
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
