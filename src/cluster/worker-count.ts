import { availableParallelism } from 'node:os'
import type { GatewayConfig } from '../config/types.js'
import { ConfigError, ErrorCode } from '../errors.js'

export const MAX_WORKERS = 256

/**
 * How many worker processes serve traffic: SRVGATE_WORKERS (an operator's
 * override wins over the file), else `workers:`, else one per core this
 * process may use. 1 means no cluster at all: one process, as before.
 */
export function workerCount (config: GatewayConfig, env: Readonly<Record<string, string | undefined>> = process.env): number {
  const override = env.SRVGATE_WORKERS
  if (override !== undefined && override !== '') {
    const count = Number(override)
    if (!Number.isInteger(count) || count < 1 || count > MAX_WORKERS) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, [{ path: 'SRVGATE_WORKERS', message: `must be a whole number from 1 to ${MAX_WORKERS}, not "${override}"` }])
    }
    return count
  }
  return config.workers ?? availableParallelism()
}
