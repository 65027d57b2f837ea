import type { DnsFaceConfig } from '../config/types.js'

/**
 * One worker's part of the dns section's limits, when `workers` processes
 * answer on one port (SO_REUSEPORT: the kernel spreads datagrams by source
 * address and port). The rate limits bound what the gateway as a whole
 * answers (and so reflects), so each is divided, rounded up: a source whose
 * queries come from many ports (a stub resolver picks a new one per query,
 * RFC 5452) spreads over every worker and gets about `perSecond` in all, at
 * most `workers` × ⌈perSecond / workers⌉; one that always sends from the same
 * port lands on one worker and gets its share only, ⌈perSecond / workers⌉
 * (docs/OPERATIONS.md states the bound).
 *
 * The TCP connection caps are not divided: they bound what one process holds
 * open (its descriptors and memory), as client.maxConnections does for HTTP
 * and nginx's worker_connections does. Divided, the primary's round-robin
 * would refuse clients at about half the cap whenever one worker's
 * connections outlive another's.
 */
export function workerShare (config: DnsFaceConfig, workers: number): DnsFaceConfig {
  if (workers <= 1) return config
  const part = (value: number): number => Math.max(1, Math.ceil(value / workers))
  const { rateLimit } = config
  return {
    ...config,
    rateLimit: { perSecond: part(rateLimit.perSecond), burst: part(rateLimit.burst), globalPerSecond: part(rateLimit.globalPerSecond) }
  }
}
