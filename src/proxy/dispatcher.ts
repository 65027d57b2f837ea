import { readFileSync } from 'node:fs'
import { Agent, type Dispatcher } from 'undici'
import type { Backend } from '../upstream/backend.js'
import { tolerantConnector } from './interim-continue.js'
import { systemClock, type Clock } from '../util/clock.js'
import { FailoverRequest, type DispatcherEvents, type ProxyContext } from './failover-request.js'

/**
 * Where every proxied request goes (plugin.ts for requests, upgrade.ts for
 * WebSocket handshakes): a FailoverRequest per request. Each attempt picks an
 * instance from the backend (never one already tried), sends the request
 * through a keep-alive pool for that instance, and on a connect failure, or
 * a retryable status for an idempotent method, tries another one, body
 * included. What to retry is decided in retry-policy.ts; this class only owns
 * the pools.
 */
export class GatewayDispatcher {
  readonly #agents = new Map<string, Agent>()
  readonly #events: DispatcherEvents
  readonly #clock: Clock

  constructor (events: DispatcherEvents = {}, clock: Clock = systemClock) {
    this.#events = events
    this.#clock = clock
  }

  /** Send one request (method, path, headers; the body comes from the context) to the context's backend. */
  forward (context: ProxyContext, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    new FailoverRequest((backend) => this.agentFor(backend), this.#clock, context, options, handler, this.#events).start()
  }

  /**
   * One keep-alive Agent per (connect timeout, connection limit): backends
   * sharing both share pools, a pool per instance inside. Keyed by settings,
   * not the backend, so reloads and templated backends reuse warm connections.
   */
  agentFor (backend: Backend): Agent {
    const { timeouts, maxConnectionsPerInstance, tls } = backend.options
    const key = `${timeouts.connectMs}/${maxConnectionsPerInstance}/${tls === undefined ? '' : `${tls.serverName}/${tls.caPath ?? ''}/${String(tls.verify)}`}`
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      // TLS to instances: the SNI and the verified name are serverName, never the SRV target or the address.
      const secure = tls === undefined ? {} : { servername: tls.serverName, rejectUnauthorized: tls.verify, ...(tls.caPath === undefined ? {} : { ca: readFileSync(tls.caPath) }) }
      agent = new Agent({ connect: tolerantConnector({ timeout: timeouts.connectMs, ...secure }), keepAliveTimeout: 4000, connections: maxConnectionsPerInstance })
      this.#agents.set(key, agent)
    }
    return agent
  }

  /** Let in-flight requests finish, then close every pool. */
  async close (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.close().catch(() => {}) }))
  }

  /** Close every pool now: queued and running requests fail (drain.timeout has passed). */
  async destroy (): Promise<void> {
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map(async (agent) => { await agent.destroy().catch(() => {}) }))
  }
}
