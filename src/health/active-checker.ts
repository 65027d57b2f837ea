import { readFileSync } from 'node:fs'
import type { Agent } from 'undici'
import type { BackendOptions, HealthCheckConfig } from '../config/types.js'
import type { Instance } from '../discovery/instance-set.js'
import type { Random } from '../util/random.js'
import type { Clock, Timer } from '../util/clock.js'
import type { HealthTable, InstanceHealth } from './instance-health.js'

/** One HTTP check of one instance: true when it answered 2xx or 3xx within the timeout. */
export type Probe = (instance: Instance, check: HealthCheckConfig) => Promise<boolean>

export type ActiveCheckerOptions = {
  readonly check: HealthCheckConfig
  /** The instances DNS currently lists (read at every round). */
  readonly instances: () => readonly Instance[]
  readonly health: HealthTable
  readonly random: Random
  /** Schedules the rounds (a ManualClock in tests: rounds without sleeping). */
  readonly clock: Clock
  /** Called when an instance crosses rise or fall. */
  readonly onChange: (instance: Instance, isFailing: boolean) => void
  readonly probe?: Probe
  /** How the backend's instances are spoken to: the checks speak the same (HTTP/1.1 or HTTP/2, TLS or not). */
  readonly speaks?: Pick<BackendOptions, 'protocol' | 'tls'>
}

/** Each round starts interval × (0.8 … 1.2) after the last: replicas do not probe in lockstep. */
const JITTER = 0.2

/**
 * Active health checks: an HTTP GET of `path` against every DNS-discovered
 * instance each interval, `rise` passes in a row to come back, `fall`
 * failures in a row to be taken out. State lives in the backend's health
 * table, keyed by address:port, so it survives DNS refreshes.
 */
export class ActiveChecker {
  readonly #options: ActiveCheckerOptions
  readonly #probe: Probe
  #agent: Promise<Agent> | undefined
  #timer: Timer | undefined
  #isStopped = false

  constructor (options: ActiveCheckerOptions) {
    this.#options = options
    const isSecure = options.speaks?.tls !== undefined
    this.#probe = options.probe ?? (async (instance, check) => await httpProbe(await this.#agentOnce(), isSecure ? instance.tlsOrigin : instance.origin, check))
  }

  /**
   * undici (and its WebAssembly HTTP parser, about 10 MB of RSS) is loaded on
   * the first probe, not at import: a control plane with no active checks never
   * pays for it.
   */
  async #agentOnce (): Promise<Agent> {
    this.#agent ??= this.#makeAgent()
    return await this.#agent
  }

  /** Once per checker: the CA file is read here, not at every probe. */
  async #makeAgent (): Promise<Agent> {
    const { protocol = 'http1', tls } = this.#options.speaks ?? {}
    // undici's HTTP/2 serves a check (a status, a body thrown away): h2-pool.ts's reason does not apply.
    const secure = tls === undefined ? {} : { servername: tls.serverName, rejectUnauthorized: tls.verify, ...(tls.caPath === undefined ? {} : { ca: readFileSync(tls.caPath) }) }
    const { Agent, H2CClient } = await import('undici')
    return new Agent({
      connect: { timeout: this.#options.check.timeoutMs, ...secure },
      keepAliveTimeout: this.#options.check.intervalMs * 2,
      ...(protocol === 'h2' ? { allowH2: true } : {}),
      // Prior knowledge: undici's H2CClient (an Agent's own pools ignore useH2c).
      ...(protocol === 'h2c' ? { factory: (origin: URL | string, options: object) => new H2CClient(origin, options) } : {})
    })
  }

  start (): void { this.#schedule(this.#options.random.next() * this.#options.check.intervalMs) }

  stop (): void {
    this.#isStopped = true
    this.#timer?.cancel()
    void this.#agent?.then(async (agent) => { await agent.close() })
  }

  /** One round over every instance (exposed for tests). */
  async round (): Promise<void> {
    const { instances, health, check } = this.#options
    await Promise.all(instances().map(async (instance) => {
      let isPassing: boolean
      try {
        isPassing = await this.#probe(instance, check)
      } catch {
        isPassing = false
      }
      if (!this.#isStopped) this.#record(instance, health.get(instance.key), isPassing)
    }))
  }

  #record (instance: Instance, record: InstanceHealth, isPassing: boolean): void {
    const { rise, fall } = this.#options.check
    if (isPassing) {
      record.checksPassed++
      record.checksFailed = 0
      if (record.isFailingActiveCheck && record.checksPassed >= rise) {
        record.isFailingActiveCheck = false
        this.#options.onChange(instance, false)
      }
    } else {
      record.checksFailed++
      record.checksPassed = 0
      if (!record.isFailingActiveCheck && record.checksFailed >= fall) {
        record.isFailingActiveCheck = true
        this.#options.onChange(instance, true)
      }
    }
  }

  #schedule (delayMs: number): void {
    if (this.#isStopped) return
    this.#timer = this.#options.clock.setTimeout(() => {
      this.round().finally(() => {
        const interval = this.#options.check.intervalMs
        this.#schedule(interval * (1 - JITTER + 2 * JITTER * this.#options.random.next()))
      })
    }, delayMs, { unref: true })
  }
}

async function httpProbe (agent: Agent, origin: string, check: HealthCheckConfig): Promise<boolean> {
  const response = await agent.request({
    origin,
    path: check.path,
    method: 'GET',
    headersTimeout: check.timeoutMs,
    bodyTimeout: check.timeoutMs,
    signal: AbortSignal.timeout(check.timeoutMs),
    headers: { 'user-agent': 'srvgate-health-check' }
  })
  await response.body.dump()
  return response.statusCode >= 200 && response.statusCode < 400
}
