import type { DnsFaceConfig } from '../config/types.js'

/**
 * One worker's part of the dns section's limits, when `workers` processes
 * answer on one port (SO_REUSEPORT: the kernel spreads datagrams by source
 * address and port; the primary spreads TCP connections round-robin). Each
 * limit is divided, rounded up, so the whole gateway keeps the configured
 * figures: a source whose queries come from many ports (a stub resolver
 * picks a new one per query, RFC 5452) spreads over every worker and gets
 * about `perSecond` in all, at most `workers` × ⌈perSecond / workers⌉; one
 * that always sends from the same port lands on one worker and gets its
 * share only, ⌈perSecond / workers⌉ (docs/OPERATIONS.md states the bound).
 */
export function workerShare (config: DnsFaceConfig, workers: number): DnsFaceConfig {
  if (workers <= 1) return config
  const part = (value: number): number => Math.max(1, Math.ceil(value / workers))
  const { rateLimit, tcp } = config
  return {
    ...config,
    rateLimit: { perSecond: part(rateLimit.perSecond), burst: part(rateLimit.burst), globalPerSecond: part(rateLimit.globalPerSecond) },
    tcp: { ...tcp, maxConnections: part(tcp.maxConnections), maxConnectionsPerSource: part(tcp.maxConnectionsPerSource) }
  }
}
