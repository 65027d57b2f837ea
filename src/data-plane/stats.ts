import type { GatewayMetrics } from '../admin/metrics.js'
import type { BackendRegistry } from '../upstream/registry.js'

/** What a data plane reports to the control plane for /metrics and /admin/state (cluster/protocol.ts carries it). */
export type DataPlaneStats = {
  /** prom-client's `getMetricsAsJSON()`: aggregated by prom-client where /metrics is served. */
  readonly metrics: unknown[]
  readonly byBackend: ReadonlyArray<readonly [string, { readonly requests: number, readonly errors: number }]>
  /** In-flight requests by backend name and instance key (only the non-zero ones). */
  readonly inFlight: ReadonlyArray<readonly [string, string, number]>
}

export async function statsOf (metrics: GatewayMetrics, registry: BackendRegistry): Promise<DataPlaneStats> {
  const inFlight: Array<readonly [string, string, number]> = []
  for (const backend of registry.all()) {
    for (const record of backend.health.values()) if (record.inFlight > 0) inFlight.push([backend.name, record.key, record.inFlight])
  }
  return {
    metrics: await metrics.registry.getMetricsAsJSON(),
    byBackend: [...metrics.requestsByBackend],
    inFlight
  }
}
