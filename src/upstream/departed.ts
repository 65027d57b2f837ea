import type { Instance } from '../discovery/instance-set.js'
import type { Backend } from './backend.js'

/**
 * The origins (plain and TLS) of instances that left DNS and that no backend
 * lists any more: their pools can close once their requests finish. An
 * instance another backend still lists keeps its pool.
 */
export function departedOrigins (removed: readonly Instance[], backends: readonly Backend[]): Set<string> {
  const gone = new Set<string>()
  for (const instance of removed) {
    if (backends.some((backend) => backend.set.has(instance.key))) continue
    gone.add(instance.origin)
    gone.add(instance.tlsOrigin)
  }
  return gone
}
