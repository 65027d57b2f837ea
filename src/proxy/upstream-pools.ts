import { readFileSync } from 'node:fs'
import { Pool, type Dispatcher } from 'undici'
import type { Backend } from '../upstream/backend.js'
import type { BackendOptions } from '../config/types.js'
import { tolerantConnector } from './interim-continue.js'
import { systemClock, type Clock } from '../util/clock.js'
import type { ForwardDeps, ProxyRequest } from './proxy-request.js'
import type { DispatcherEvents } from './attempt.js'
import { ConnectionWaits } from './connection-waits.js'
import { UploadSlots } from './upload-slots.js'
import { H2Pool, type H2PoolOptions } from './h2-pool.js'

/** What an instance's requests go through: undici's Pool over HTTP/1.1, or H2Pool over HTTP/2. */
export type InstancePool = Pool | H2Pool

/**
 * The upstream pools, and the requests run over them (plugin.ts for
 * requests, upgrade.ts for WebSocket handshakes, the client's
 * ServiceDispatcher): each ProxyRequest's attempts go through the keep-alive
 * pool of the instance they picked. Not an undici Dispatcher itself: it
 * hands each attempt to the Pool its instance and settings call for. What to
 * retry is decided in retry-policy.ts and carried out by the ProxyRequest;
 * this class only owns the pools.
 */
export class UpstreamPools {
  readonly #settings = new WeakMap<BackendOptions, PoolSettings>()
  /**
   * Backends with the same pool settings share one PoolSettings, across reloads too; each holds
   * one keep-alive pool per instance origin (an instance that leaves is closed alone).
   */
  readonly #settingsByKey = new Map<string, PoolSettings>()
  readonly #deps: ForwardDeps
  readonly #clock: Clock

  constructor (events: DispatcherEvents = {}, clock: Clock = systemClock) {
    this.#clock = clock
    this.#deps = { poolFor: (backend, origin) => this.poolFor(backend, origin), clock, events, waits: new ConnectionWaits(clock), uploads: new UploadSlots() }
  }

  /** Send a routed request (method, path, headers; the body comes from its route) to its backend, the answer to `handler`. */
  forward (request: ProxyRequest, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    request.forward(this.#deps, options, handler)
  }

  /**
   * The pool for one instance under a backend's settings (connect timeout,
   * connection limit, TLS, connection age). Keyed by settings and origin, not
   * by backend, so reloads and templated backends reuse warm connections.
   */
  poolFor (backend: Backend, origin: string): InstancePool {
    const settings = this.#settingsOf(backend.options)
    // Per request: one map read by the origin string.
    const existing = settings.pools.get(origin)
    if (existing !== undefined) return existing
    const pool = settings.h2 === undefined ? new Pool(origin, settings.options) : new H2Pool(origin, settings.h2)
    // Like undici's Agent: a pool whose last connection went away is dropped (bounded by the instances in use).
    const dropIfIdle = (): void => {
      const stats = pool.stats
      if (stats.connected > 0 || stats.running > 0 || stats.pending > 0) return
      if (settings.pools.get(origin) === pool) settings.pools.delete(origin)
      void pool.close().catch(() => {})
    }
    pool.on('disconnect', dropIfIdle)
    pool.on('connectionError', dropIfIdle)
    settings.pools.set(origin, pool)
    return pool
  }

  /**
   * Instances no backend lists any more: their pools leave the map now (a
   * returning instance gets a new one) and close once their requests finish,
   * so no keep-alive connection to a departed address is left behind.
   */
  retire (origins: ReadonlySet<string>): void {
    for (const { pools } of this.#settingsByKey.values()) {
      for (const [origin, pool] of pools) {
        if (!origins.has(origin)) continue
        pools.delete(origin)
        void pool.close().catch(() => {})
      }
    }
  }

  /** Connections open to instances now (srvgate_upstream_connections). */
  get openConnections (): number {
    let total = 0
    for (const pool of this.#allPools()) total += pool.stats.connected
    return total
  }

  #settingsOf (options: BackendOptions): PoolSettings {
    let settings = this.#settings.get(options)
    if (settings === undefined) {
      const { timeouts, maxConnectionsPerInstance, tls, maxConnectionAgeMs, protocol } = options
      // TLS to instances: the SNI and the verified name are serverName, never the SRV target or the address.
      const ca = tls?.caPath === undefined ? undefined : readFileSync(tls.caPath)
      const secure = tls === undefined ? {} : { servername: tls.serverName, rejectUnauthorized: tls.verify, ...(ca === undefined ? {} : { ca }) }
      const key = `${protocol}/${timeouts.connectMs}/${maxConnectionsPerInstance}/${maxConnectionAgeMs ?? ''}/${tls === undefined ? '' : `${tls.serverName}/${tls.caPath ?? ''}/${String(tls.verify)}`}`
      const shared = this.#settingsByKey.get(key)
      if (shared !== undefined) {
        this.#settings.set(options, shared)
        return shared
      }
      settings = {
        pools: new Map(),
        // HTTP/2 (h2c, h2): each connection carries many requests; maxConnectionsPerInstance bounds the connections.
        h2: protocol === 'http1'
          ? undefined
          : { connectTimeoutMs: timeouts.connectMs, maxSessions: maxConnectionsPerInstance, maxAgeMs: maxConnectionAgeMs, idleTimeoutMs: IDLE_MS, clock: this.#clock, tls: tls === undefined ? undefined : { servername: tls.serverName, rejectUnauthorized: tls.verify, ...(ca === undefined ? {} : { ca }) } },
        options: {
          connect: tolerantConnector({ timeout: timeouts.connectMs, ...secure }),
          keepAliveTimeout: IDLE_MS,
          connections: maxConnectionsPerInstance,
          // maxConnectionAge: a connection older than this is not reused (undici's clientTtl).
          ...(maxConnectionAgeMs === undefined ? {} : { clientTtl: maxConnectionAgeMs })
        }
      }
      this.#settings.set(options, settings)
      this.#settingsByKey.set(key, settings)
    }
    return settings
  }

  /** Let in-flight requests finish, then close every pool. */
  async close (): Promise<void> {
    await Promise.all(this.#takeAll().map(async (pool) => { await pool.close().catch(() => {}) }))
  }

  /** Close every pool now: queued and running requests fail (drain.timeout has passed). */
  async destroy (): Promise<void> {
    await Promise.all(this.#takeAll().map(async (pool) => { await pool.destroy().catch(() => {}) }))
  }

  * #allPools (): Generator<InstancePool> {
    for (const { pools } of this.#settingsByKey.values()) yield * pools.values()
  }

  /** Every pool, each map emptied: nothing is handed out again. */
  #takeAll (): InstancePool[] {
    const pools = [...this.#allPools()]
    for (const settings of this.#settingsByKey.values()) settings.pools.clear()
    return pools
  }
}

type PoolSettings = { readonly options: Pool.Options, readonly h2: H2PoolOptions | undefined, readonly pools: Map<string, InstancePool> }

/** An idle keep-alive connection to an instance is closed after this long (undici's keepAliveTimeout). */
const IDLE_MS = 4000
