import { GatewayMetrics } from './admin/metrics.js'
import { instanceState } from './admin/state.js'
import { processLogger, silentLogger, type Log } from './log/process-log.js'
import type { Backend } from './upstream/backend.js'
import { systemClock, type Clock } from './util/clock.js'
import { systemRandom, type Random } from './util/random.js'
import { VERSION } from './util/version.js'

export type ProcessOptions = {
  readonly clock?: Clock
  readonly random?: Random
  /** The log level; undefined: logging off (tests that read no logs). */
  readonly logLevel?: string
  /** Where log lines go (stdout unless given: a test reading what a process said). */
  readonly logDestination?: { write: (line: string) => void }
}

/** What every srvgate process has whatever its role: a clock, randomness, its logger and its metrics. */
export type ProcessParts = { readonly clock: Clock, readonly random: Random, readonly log: Log, readonly requestLog: Log | undefined, readonly metrics: GatewayMetrics }

/** The process's parts for a role; `backends` is read when /metrics is scraped (the registry the role serves from). */
/**
 * The role a process's metrics take: `primary` is the control plane (with the process's
 * own metrics), `worker` a cluster worker's data plane (with its process's), `in-process`
 * the data plane beside the control plane in one process (the process's own metrics are
 * the control plane's already).
 */
export type MetricsRole = 'primary' | 'worker' | 'in-process'

export function processParts (options: ProcessOptions, role: MetricsRole, backends: () => readonly Backend[]): ProcessParts {
  const clock = options.clock ?? systemClock
  const requestLog = options.logLevel === undefined ? undefined : processLogger({ level: options.logLevel }, clock, options.logDestination)
  const metrics = new GatewayMetrics(backends, (backend, instance) => instanceState(backend, instance, clock.now()), { version: VERSION, clock, role })
  return { clock, random: options.random ?? systemRandom, log: requestLog ?? silentLogger(), requestLog, metrics }
}
