import { EventEmitter } from 'node:events'
import { Agent, fetch as undiciFetch, request as undiciRequest, type Dispatcher } from 'undici'
import type { Registry } from 'prom-client'
import { GatewayMetrics } from '../admin/metrics.js'
import { instanceState } from '../admin/state.js'
import type { GatewayConfig } from '../config/types.js'
import type { Instance } from '../discovery/instance-set.js'
import { UpstreamPools } from '../proxy/upstream-pools.js'
import type { Outcome } from '../upstream/backend.js'
import { BackendRegistry } from '../upstream/registry.js'
import { departedOrigins } from '../upstream/departed.js'
import { systemClock } from '../util/clock.js'
import { systemRandom } from '../util/random.js'
import { VERSION } from '../util/version.js'
import { clientConfigFromFile, compileClientConfig, type ClientConfigInput } from './client-config.js'
import { ServiceDispatcher, refuseClosed } from './service-dispatcher.js'
import { ClientClosedError } from '../errors.js'

export { fetch, request, Agent } from 'undici'
export type { Dispatcher } from 'undici'
/** What every request after close() rejects with (`code: 'SG_ERR_CLIENT_CLOSED'`). */
export { ClientClosedError }

export type ClientOptions = ClientConfigInput & ClientExtras

/** undici.request's options (method defaults to GET), without the dispatcher: the client's is used. */
export type RequestOptions = Partial<Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'dispatcher'>>

export type ClientExtras = {
  /** Where requests to any other host go (ordinary DNS); default: a new undici Agent, closed by close(). */
  readonly dispatcher?: Dispatcher
  /** A prom-client registry to register srvgate's discovery, health and upstream metrics in. */
  readonly registry?: Registry
}

/** What the client tells, as events (`client.on('pick', …)`). */
export type ClientEvents = {
  pick: [{ readonly service: string, readonly instance: string, readonly attempt: number }]
  attempt: [{ readonly service: string, readonly instance: string, readonly outcome: Outcome, readonly durationMs: number }]
  retry: [{ readonly service: string, readonly reason: string }]
  ejection: [{ readonly service: string, readonly instance: string, readonly untilMs: number }]
  setChanged: [{ readonly service: string, readonly added: readonly string[], readonly removed: readonly string[] }]
  error: [Error]
}

/**
 * srvgate inside a Node service: the gateway's discovery (DNS transport,
 * short-TTL cache, background refresh, stale sets), balancing, outlier
 * ejection and retry policy, with no gateway hop. Requests to `http://web/…`
 * go to the instances of service `web`; any other host goes on untouched.
 * Nothing process-wide is changed; close() releases every socket and timer.
 */
export class SrvgateClient extends EventEmitter<ClientEvents> {
  /** An undici Dispatcher: `undici.request(url, { dispatcher: client.dispatcher })`. */
  readonly dispatcher: Dispatcher
  /** The same as an undici interceptor: `agent.compose(client.interceptor)`. */
  readonly interceptor: Dispatcher.DispatcherComposeInterceptor
  readonly #registry: BackendRegistry
  readonly #proxy: UpstreamPools
  readonly #fallback: Dispatcher
  readonly #ownsFallback: boolean
  #closing: Promise<void> | undefined

  constructor (config: GatewayConfig, extras: ClientExtras = {}) {
    super()
    const clock = systemClock
    // Its collectors read the registry and the pools lazily, once both exist.
    const metrics = extras.registry === undefined
      ? undefined
      : new GatewayMetrics(() => this.#registry.all(), (backend, instance) => instanceState(backend, instance, clock.now()), {
        version: VERSION, clock, role: 'client', registry: extras.registry
      })
    const registry: BackendRegistry = BackendRegistry.control(config, {
      clock,
      random: systemRandom,
      // A library has no listeners of its own to protect.
      ownListeners: [],
      dnsObserver: metrics?.dnsObserver,
      onCacheRead: metrics?.onCacheRead,
      onError: (error) => { if (this.listenerCount('error') > 0) this.emit('error', error as Error) },
      events: {
        instanceEjected: (service, instance, untilMs) => {
          metrics?.backendEvents.instanceEjected?.(service, instance, untilMs)
          this.emit('ejection', { service, instance: instance.key, untilMs })
        },
        setChanged: (service, added, removed) => {
          this.emit('setChanged', { service, added: added.map((instance) => instance.key), removed: removed.map((instance) => instance.key) })
          this.#retireDeparted(removed)
        }
      }
    })
    this.#registry = registry
    this.#proxy = new UpstreamPools({
      picked: (service, instance, attempt) => { this.emit('pick', { service, instance: instance.key, attempt }) },
      retried: (service, reason) => {
        metrics?.dispatcherEvents.retried?.(service, reason)
        this.emit('retry', { service, reason })
      },
      attemptFinished: (service: string, instance: Instance, outcome: Outcome, durationMs: number) => {
        metrics?.dispatcherEvents.attemptFinished?.(service, instance, outcome, durationMs)
        this.emit('attempt', { service, instance: instance.key, outcome, durationMs })
      }
    }, clock)
    metrics?.countTraffic({ upstreamConnections: () => this.#proxy.openConnections })
    this.#ownsFallback = extras.dispatcher === undefined
    this.#fallback = extras.dispatcher ?? new Agent()
    // A split's name is a service too: each request goes to one member, as at the gateway.
    const serviceOf = (name: string) => registry.get(name) ?? registry.split(name)
    const isClosed = (): boolean => this.#closing !== undefined
    // Closed, the client refuses every request it is handed, other hosts too (its Agent is closing);
    // composed as an interceptor, only requests to services: the other hosts are the Agent's.
    this.dispatcher = new ServiceDispatcher(serviceOf, this.#proxy, (options, handler) => isClosed() ? refuseClosed(handler) : this.#fallback.dispatch(options, handler), async () => { await this.close() }, isClosed)
    this.interceptor = (dispatch) => {
      const services = new ServiceDispatcher(serviceOf, this.#proxy, dispatch, async () => {}, isClosed)
      return (options, handler) => services.dispatch(options, handler)
    }
    // Every service resolves in the background from now on; a request waits only for a first resolution still running.
    registry.start().catch((error: unknown) => { if (this.listenerCount('error') > 0) this.emit('error', error as Error) })
  }

  /** Every service's first resolution done (or failed into a known state). */
  async ready (): Promise<void> {
    await Promise.all(this.#registry.all().map(async (backend) => { await backend.ready() }))
  }

  /** `fetch` from the same undici copy, through this client. */
  async fetch (input: Parameters<typeof undiciFetch>[0], init: Parameters<typeof undiciFetch>[1] = {}): ReturnType<typeof undiciFetch> {
    // Refused here, not inside fetch: undici's fetch would wrap the error in TypeError('fetch failed').
    if (this.#closing !== undefined) throw new ClientClosedError()
    return await undiciFetch(input, { ...init, dispatcher: this.dispatcher })
  }

  /** `request` from the same undici copy, through this client. */
  async request (url: string | URL, options: RequestOptions = {}): Promise<Dispatcher.ResponseData> {
    if (this.#closing !== undefined) throw new ClientClosedError()
    return await undiciRequest(url, { ...options, dispatcher: this.dispatcher })
  }

  /** Each service's usable instances now, lowest priority group first (what the next pick chooses from); a split's, member by member. */
  instances (service: string): string[] {
    const backends = this.#registry.split(service)?.members.map((member) => member.backend) ?? [this.#registry.get(service)]
    return backends.flatMap((backend) => backend?.usableGroups().flat().map((instance) => instance.key) ?? [])
  }

  /**
   * Stop discovery and checks, close every pool (requests under way finish
   * first) and the fallback Agent it made. From the call on, every new
   * request rejects with ClientClosedError (SG_ERR_CLIENT_CLOSED).
   */
  async close (): Promise<void> {
    this.#closing ??= (async () => {
      this.#registry.stop()
      await this.#proxy.close()
      if (this.#ownsFallback) await this.#fallback.close()
    })()
    await this.#closing
  }

  /** Instances no service lists any more: their pools close once their requests finish. */
  #retireDeparted (removed: readonly Instance[]): void {
    const gone = departedOrigins(removed, this.#registry.all())
    if (gone.size > 0) this.#proxy.retire(gone)
  }
}

/** A client for services given inline (`resolvers` and `services`, the gateway's `backends` shape). */
export function createClient (options: ClientOptions): SrvgateClient {
  const { dispatcher, registry, ...sections } = options
  return new SrvgateClient(compileClientConfig(sections), { dispatcher, registry })
}

/** A client for the resolvers and backends of a gateway configuration file (its listeners and frontends unused). */
export async function createClientFromFile (path: string, extras: ClientExtras = {}): Promise<SrvgateClient> {
  return new SrvgateClient(await clientConfigFromFile(path), extras)
}
