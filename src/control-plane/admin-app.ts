import Fastify, { LogController, type FastifyInstance } from 'fastify'
import { adminPlugin } from '../admin/plugin.js'
import { gatewayState } from '../admin/state.js'
import { RateHistory, SAMPLE_EVERY_MS } from '../admin/rate-history.js'
import type { DataPlaneStats } from '../data-plane/stats.js'
import { dateAt, type Clock } from '../util/clock.js'
import { schemaless } from '../util/fastify-schemaless.js'
import type { ControlPlane } from './control-plane.js'
import type { DataPlanes } from './data-planes.js'

/**
 * The admin listener's app (/healthz, /readyz, /metrics, /admin/state,
 * /admin/reload, the dashboard), answered from the control plane and, with
 * worker processes, every worker's figures.
 */
export type AdminApp = FastifyInstance

export async function adminApp (control: ControlPlane, dataPlanes: DataPlanes, clock: Clock): Promise<AdminApp> {
  const app = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }), ...schemaless })
  const config = control.state.config
  const metrics = control.metrics
  // The dashboard's five minutes, kept here: a tab opened now shows the past (the same sums /admin/state shows).
  const history = new RateHistory(clock, async () => {
    const stats = await dataPlanes.stats?.()
    // A copy: this process's counts are one live map, and the sample before must keep its own.
    return { byBackend: stats === undefined ? new Map([...metrics.requestsByBackend].map(([name, counts]) => [name, { ...counts }])) : sumByBackend(stats), dnsQueries: metrics.dnsQueryCount }
  })
  history.start()
  app.addHook('onClose', async () => { history.stop() })
  await app.register(adminPlugin, {
    token: config.adminToken,
    listenHost: config.listen.admin.host,
    allowedHosts: config.adminAllowedHosts,
    contentType: metrics.registry.contentType,
    // With workers: this process's registry and every worker's, aggregated by prom-client.
    exposition: async () => await metrics.exposition(dataPlanes.stats === undefined ? undefined : (await dataPlanes.stats()).map((stats) => stats.metrics)),
    isReady: () => control.isReady,
    state: async () => {
      const stats = await dataPlanes.stats?.()
      const state = control.state
      return gatewayState(state.config, state, {
        isReady: control.isReady,
        isDraining: control.status.isDraining,
        configPath: control.configPath,
        loadedAt: control.status.loadedAt,
        lastReload: control.status.lastReload,
        restartNeeded: control.status.restartNeeded,
        certificates: control.certificates === undefined
          ? undefined
          : [
              ...control.certificates.certificates.map((certificate) => ({
                source: 'file' as const,
                file: certificate.certPath,
                names: certificate.names,
                serial: certificate.serial,
                notAfter: dateAt(certificate.notAfterMs).toISOString(),
                daysLeft: Math.floor((certificate.notAfterMs - clock.wallNow()) / 86_400_000)
              })),
              ...(control.acme?.status() ?? []).map((status) => ({
                source: 'acme' as const,
                names: [status.name],
                ...(status.isOnDemand ? { onDemand: true } : {}),
                ...(status.notAfterMs === undefined ? {} : { notAfter: dateAt(status.notAfterMs).toISOString(), daysLeft: Math.floor((status.notAfterMs - clock.wallNow()) / 86_400_000) }),
                ...(status.nextOrderAtMs === undefined ? {} : { nextRenewal: dateAt(status.nextOrderAtMs).toISOString() }),
                ...(status.renewalWindow === undefined ? {} : { renewalWindow: { start: dateAt(status.renewalWindow.startMs).toISOString(), end: dateAt(status.renewalWindow.endMs).toISOString() } }),
                ...(status.lastError === undefined ? {} : { lastError: status.lastError })
              }))
            ],
        workers: dataPlanes.workers?.(),
        history: { intervalMs: SAMPLE_EVERY_MS, points: history.points }
      }, clock, stats === undefined
        ? { byBackend: metrics.requestsByBackend, dnsQueries: metrics.dnsQueryCount }
        : { byBackend: sumByBackend(stats), dnsQueries: metrics.dnsQueryCount, inFlight: inFlightOf(stats) })
    },
    reload: async () => await control.reload()
  })
  return app
}

/** Requests per backend name, summed over the workers. */
function sumByBackend (stats: readonly DataPlaneStats[]): Map<string, { requests: number, errors: number }> {
  const sum = new Map<string, { requests: number, errors: number }>()
  for (const { byBackend } of stats) {
    for (const [name, counts] of byBackend) {
      const total = sum.get(name) ?? { requests: 0, errors: 0 }
      total.requests += counts.requests
      total.errors += counts.errors
      sum.set(name, total)
    }
  }
  return sum
}

/** In-flight requests by backend name, then instance key, summed over the workers. */
function inFlightOf (stats: readonly DataPlaneStats[]): Map<string, Map<string, number>> {
  const sum = new Map<string, Map<string, number>>()
  for (const { inFlight } of stats) {
    for (const [name, key, count] of inFlight) {
      const byKey = sum.get(name) ?? new Map<string, number>()
      byKey.set(key, (byKey.get(key) ?? 0) + count)
      sum.set(name, byKey)
    }
  }
  return sum
}
