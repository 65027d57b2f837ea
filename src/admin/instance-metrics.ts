import type { Counter, Histogram, Registry } from 'prom-client'
import { loadPromClient } from './prom-client-loader.js'
import type { Instance } from '../discovery/instance-set.js'
import type { Outcome } from '../upstream/backend.js'

/** Instances with series of their own at once, per process; attempts to others count under instance="(other)". */
export const MAX_INSTANCE_SERIES = 1000
const OTHER = '(other)'
const OUTCOMES: readonly Outcome[] = ['success', 'connect-failure', 'timeout', 'reset', 'status-5xx']

/**
 * metrics.perInstance: attempts and their latency per instance, as HAProxy's
 * stats page and Traefik's dashboard show servers (off by default: a fleet of
 * thousands of instances would make thousands of series). Bounded by
 * MAX_INSTANCE_SERIES; an instance that leaves every backend has its series
 * removed (forget), so churn does not pile them up. Through prom-client's
 * own label calls (~1 µs an attempt): opt-in, not worth a tally.
 */
export class InstanceMetrics {
  isEnabled = false
  readonly attempts: Counter<'backend' | 'instance' | 'outcome'>
  readonly latency: Histogram<'backend' | 'instance'>
  /** backend → instances with series. */
  readonly #held = new Map<string, Set<string>>()
  #count = 0

  constructor (registers: Registry[]) {
    const { Counter, Histogram } = loadPromClient()
    this.attempts = new Counter({ name: 'srvgate_upstream_instance_attempts_total', help: 'Attempts sent to each instance (address:port) by backend and outcome (success, connect-failure, timeout, reset, status-5xx); metrics.perInstance only, at most 1000 instances a process (others under instance="(other)").', labelNames: ['backend', 'instance', 'outcome'], registers })
    this.latency = new Histogram({ name: 'srvgate_upstream_instance_latency_seconds', help: 'Time from sending an attempt to an instance until its response headers (or failure); metrics.perInstance only.', labelNames: ['backend', 'instance'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
  }

  attemptFinished (backend: string, instance: Instance, outcome: Outcome, durationMs: number): void {
    if (!this.isEnabled) return
    const name = this.#seriesName(backend, `${instance.address.includes(':') ? `[${instance.address}]` : instance.address}:${instance.port}`)
    this.attempts.inc({ backend, instance: name, outcome })
    this.latency.observe({ backend, instance: name }, durationMs / 1000)
  }

  /** Instances that left every backend: their series go. */
  forget (removed: readonly Instance[]): void {
    if (this.#count === 0) return
    const gone = new Set(removed.map((instance) => `${instance.address.includes(':') ? `[${instance.address}]` : instance.address}:${instance.port}`))
    for (const [backend, instances] of this.#held) {
      for (const instance of instances) {
        if (!gone.has(instance)) continue
        for (const outcome of OUTCOMES) this.attempts.remove({ backend, instance, outcome })
        this.latency.remove({ backend, instance })
        instances.delete(instance)
        this.#count--
      }
    }
  }

  /** Turned off by a reload: the series go. */
  disable (): void {
    this.isEnabled = false
    this.attempts.reset()
    this.latency.reset()
    this.#held.clear()
    this.#count = 0
  }

  #seriesName (backend: string, instance: string): string {
    let instances = this.#held.get(backend)
    if (instances?.has(instance) === true) return instance
    if (this.#count >= MAX_INSTANCE_SERIES) return OTHER
    if (instances === undefined) {
      instances = new Set()
      this.#held.set(backend, instances)
    }
    instances.add(instance)
    this.#count++
    return instance
  }
}
