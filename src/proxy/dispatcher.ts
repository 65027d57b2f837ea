import { Agent, Dispatcher } from 'undici'
import { ErrorCode, ProxyError } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import { tolerantConnector } from './interim-continue.js'
import { systemClock, type Clock } from '../util/clock.js'
import { FailoverRequest, type DispatcherEvents, type ProxyContext } from './failover-request.js'

const ORIGIN_PREFIX = 'http://'
const ORIGIN_SUFFIX = '.srvgate.invalid'

/**
 * An undici Dispatcher that @fastify/reply-from sends every proxied request
 * through. The request's origin names a ProxyContext, not a host: each attempt
 * picks an instance from the backend (never one already tried), sends the
 * request through a keep-alive pool for that instance, and on a connect
 * failure, or a retryable status for an idempotent method, tries another one,
 * body included. What to retry is decided in retry-policy.ts; this class only
 * carries the decision out and reports each outcome to the backend.
 */
export class GatewayDispatcher extends Dispatcher {
  readonly #contexts = new Map<string, ProxyContext>()
  readonly #agents = new Map<string, Agent>()
  readonly #events: DispatcherEvents
  readonly #clock: Clock
  #nextId = 0

  constructor (events: DispatcherEvents = {}, clock: Clock = systemClock) {
    super()
    this.#events = events
    this.#clock = clock
  }

  /** Register a request; the returned origin is what getUpstream hands to reply-from. */
  register (context: ProxyContext): string {
    const token = `r${(this.#nextId = (this.#nextId + 1) % Number.MAX_SAFE_INTEGER)}`
    this.#contexts.set(token, context)
    return `${ORIGIN_PREFIX}${token}${ORIGIN_SUFFIX}`
  }

  /** Forget a request that ended before it was dispatched (a hook error, a client gone). */
  release (origin: string): void {
    this.#contexts.delete(tokenOf(origin))
  }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const token = tokenOf(String(options.origin))
    const context = this.#contexts.get(token)
    this.#contexts.delete(token)
    if (context === undefined) {
      handler.onError?.(new ProxyError(ErrorCode.UPSTREAM_ERROR, `no proxy context for ${String(options.origin)}`))
      return true
    }
    new FailoverRequest((backend) => this.agentFor(backend), this.#clock, context, options, handler, this.#events).start()
    return true
  }

  /**
   * One keep-alive Agent per (connect timeout, connection limit): backends
   * sharing both share pools, a pool per instance inside. Keyed by settings,
   * not the backend, so reloads and templated backends reuse warm connections.
   */
  agentFor (backend: Backend): Agent {
    const { timeouts, maxConnectionsPerInstance } = backend.options
    const key = `${timeouts.connectMs}/${maxConnectionsPerInstance}`
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      agent = new Agent({ connect: tolerantConnector({ timeout: timeouts.connectMs }), keepAliveTimeout: 4000, connections: maxConnectionsPerInstance })
      this.#agents.set(key, agent)
    }
    return agent
  }

  /** Let in-flight requests finish, then close every pool. */
  override async close (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.close().catch(() => {}) }))
  }

  /** Close every pool now: queued and running requests fail (drain.timeout has passed). */
  override async destroy (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.destroy().catch(() => {}) }))
  }
}

function tokenOf (origin: string): string {
  return origin.startsWith(ORIGIN_PREFIX) ? origin.slice(ORIGIN_PREFIX.length, origin.length - ORIGIN_SUFFIX.length) : origin
}

