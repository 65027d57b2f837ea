import { routeView } from './routes-view.js'
import type { HistoryPoint } from './rate-history.js'
import type { GatewayConfig } from '../config/types.js'
import type { Instance } from '../discovery/instance-set.js'
import type { RoutingState } from '../proxy/route-request.js'
import type { Backend } from '../upstream/backend.js'
import { faceView } from '../upstream/face-view.js'
import { dateAt, isoNow, type Clock } from '../util/clock.js'
import type { InstanceState } from './metrics.js'

export type GatewayStatus = {
  readonly isReady: boolean
  readonly isDraining: boolean
  readonly configPath: string | undefined
  readonly loadedAt: string
  readonly lastReload: { readonly at: string, readonly result: 'ok' | 'error', readonly error?: string } | undefined
  /** Fields of the applied configuration bound at start (listeners, workers, ...) that differ from what runs: they wait for a restart. */
  readonly restartNeeded: readonly string[]
  /** With an HTTPS listener: the certificates it serves. */
  readonly certificates?: readonly CertificateState[]
  /** With worker processes: how many are configured, run now, and were replaced since start. */
  readonly workers?: { readonly configured: number, readonly running: number, readonly replaced: number, readonly pids: readonly number[] }
  /** The dashboard's last five minutes of rates, kept by the control plane (rate-history.ts). */
  readonly history?: { readonly intervalMs: number, readonly points: readonly HistoryPoint[] }
}

/**
 * A certificate the HTTPS listener serves: from a file of tls.certificates,
 * or obtained by tls.acme (one per name; before the first order succeeds it
 * has no notAfter, and lastError says why).
 */
export type CertificateState = {
  readonly source: 'file' | 'acme'
  readonly file?: string
  readonly names: readonly string[]
  readonly serial?: string
  readonly notAfter?: string
  readonly daysLeft?: number
  /** tls.acme: obtained at a handshake (onDemand), not listed in tls.acme.names. */
  readonly onDemand?: boolean
  /** tls.acme: when it is ordered next (renewal, or a retry after lastError). */
  readonly nextRenewal?: string
  /** tls.acme: the CA's suggested renewal window (ARI, RFC 9773), when it offers one; nextRenewal lies in it. */
  readonly renewalWindow?: { readonly start: string, readonly end: string }
  readonly lastError?: string
}

/** Counters the state shows next to the backends (from admin/metrics.ts). */
export type StateCounts = {
  readonly byBackend: ReadonlyMap<string, { readonly requests: number, readonly errors: number }>
  readonly dnsQueries: number
  /** With worker processes: in-flight requests by backend name and instance key (the primary serves none). */
  readonly inFlight?: ReadonlyMap<string, ReadonlyMap<string, number>>
}

export function instanceState (backend: Backend, instance: Instance, nowMs: number): InstanceState {
  const record = backend.health.peek(instance.key)
  if (record === undefined) return 'up'
  if (record.isEjected(nowMs)) return 'ejected'
  if (record.isFailingActiveCheck) return 'failing-check'
  return 'up'
}

/** The DNS face's names and what each answers now (the same view the face answers from). */
function dnsFaceState (config: GatewayConfig, routing: RoutingState) {
  const dns = config.dns
  const listener = config.listen.http ?? config.listen.https
  const gateway = listener === undefined || listener.host === '0.0.0.0' || listener.host === '::' ? undefined : { address: listener.host, port: listener.port, priority: 1, weight: 1 }
  const view = faceView(config, routing.registry, gateway)
  if (dns === undefined || view === undefined) return undefined
  return {
    zone: dns.zone,
    listen: dns.listen.map((address) => address.label),
    nameserver: view.nameserver,
    ttlSeconds: dns.ttlSeconds,
    names: [...dns.names].map(([label, entry]) => {
      const target = view.target(label)
      const preferred = target === undefined ? [] : target.kind === 'instances' ? target.preferred : target.instances
      return {
        name: `${label}.${dns.zone}`,
        srvName: `_${label}._tcp.${dns.zone}`,
        answers: entry.kind === 'gateway' ? 'gateway' : entry.backend,
        addresses: [...new Set(preferred.map((instance) => instance.address))],
        srv: (target?.instances ?? []).map((instance) => ({ address: instance.address, port: instance.port, priority: instance.priority, weight: instance.weight })),
        isStale: target?.kind === 'instances' && target.isStale
      }
    })
  }
}

/** The name of the chain's backend that takes requests now; undefined when none has a usable instance. */
function servingNow (backend: Backend): string | undefined {
  if (!backend.hasUsableInstance()) return undefined
  return backend.serving(new Set()).name
}

/** Milliseconds of the injected clock → wall-clock ISO time, for people. */
function wallTime (clockMs: number, clock: Clock): string {
  return dateAt(clock.wallNow() + (clockMs - clock.now())).toISOString()
}

/**
 * A JSON snapshot for /admin/state and the dashboard: frontends, backends,
 * instances with why each is out, resolver cache entries. Read-only.
 */
export function gatewayState (config: GatewayConfig, routing: RoutingState, status: GatewayStatus, clock: Clock, counts: StateCounts) {
  const now = clock.now()
  return {
    generatedAt: isoNow(clock),
    ...status,
    dnsQueries: counts.dnsQueries,
    frontends: config.frontends.map((frontend) => ({
      name: frontend.name,
      match: {
        host: frontend.match.host === undefined ? undefined : frontend.match.host.kind === 'exact' ? frontend.match.host.host : frontend.match.host.kind === 'suffix' ? `*${frontend.match.host.suffix}` : `${frontend.match.host.prefix}{env}${frontend.match.host.suffix}`,
        pathPrefix: frontend.match.pathPrefix,
        headers: Object.fromEntries(frontend.match.headers),
        methods: [...frontend.match.methods]
      },
      backend: frontend.backend.kind === 'template' ? frontend.backend.template.template : frontend.backend.kind === 'template-split' ? frontend.backend.split.template : frontend.backend.name,
      // The routes view: policies in the order they apply, and where traffic goes now.
      ...routeView(frontend, routing, (backend, instance) => instanceState(backend, instance, now) === 'up')
    })),
    backends: routing.registry.all().map((backend) => {
      const snapshot = backend.snapshot
      const workersInFlight = counts.inFlight?.get(backend.name)
      const inFlightOf = (key: string): number => workersInFlight === undefined ? backend.health.peek(key)?.inFlight ?? 0 : workersInFlight.get(key) ?? 0
      const instances = backend.set.instances.map((instance) => {
        const record = backend.health.peek(instance.key)
        const state = instanceState(backend, instance, now)
        return {
          key: instance.key,
          address: instance.address,
          port: instance.port,
          priority: instance.priority,
          weight: instance.weight,
          inFlight: inFlightOf(instance.key),
          consecutiveFailures: record?.consecutiveFailures ?? 0,
          state,
          reason: state === 'ejected' ? `ejected until ${wallTime(record?.ejectedUntilMs ?? now, clock)} after ${record?.ejections ?? 0} ejection(s) in a row`
            : state === 'failing-check' ? 'failing its active health check'
              : undefined,
          ejectedUntil: state === 'ejected' ? wallTime(record?.ejectedUntilMs ?? now, clock) : undefined
        }
      })
      // Gone from DNS but still finishing requests: shown as draining, with why.
      const finishing = workersInFlight === undefined ? [...backend.health.values()].map((record) => record.key) : [...workersInFlight.keys()]
      for (const key of finishing) {
        const inFlight = inFlightOf(key)
        if (backend.set.has(key) || inFlight === 0) continue
        instances.push({ key, address: key, port: 0, priority: 0, weight: 0, inFlight, consecutiveFailures: backend.health.peek(key)?.consecutiveFailures ?? 0, state: 'dns-removed', reason: 'removed from DNS; finishing in-flight requests', ejectedUntil: undefined })
      }
      return {
        name: backend.name,
        balance: backend.options.balance,
        discovery: backend.lookup,
        status: snapshot.status,
        isStale: snapshot.isStale,
        lastError: snapshot.lastError === undefined ? undefined : { code: snapshot.lastError.code, message: snapshot.lastError.message },
        metricLabel: backend.metricLabel,
        // Per backend name: each templated environment (web-pr-1, web-pr-2) on its own; metric labels stay per template.
        requests: counts.byBackend.get(backend.name)?.requests ?? 0,
        errors: counts.byBackend.get(backend.name)?.errors ?? 0,
        refused: snapshot.refused,
        instances,
        // Consul prepared-query failover: which backend of the chain takes requests now.
        failover: backend.failover.length === 0
          ? undefined
          : {
              serving: servingNow(backend),
              targets: backend.failover.map((target) => ({ name: target.name, discovery: target.lookup, usable: target.hasUsableInstance() }))
            }
      }
    }),
    dnsFace: dnsFaceState(config, routing),
    splits: routing.registry.splits().map((split) => ({
      name: split.name,
      stickyOn: split.stickyOn === undefined ? undefined : split.stickyOn.kind === 'header' || split.stickyOn.kind === 'cookie' ? `${split.stickyOn.kind}:${split.stickyOn.name}` : split.stickyOn.kind,
      members: split.members.map(({ backend, weight }) => ({ backend: backend.name, weight, usable: backend.hasUsableInstance() }))
    })),
    resolverCache: [...routing.registry.caches.entries()].flatMap(([resolver, cache]) => cache.entries().map((entry) => ({
      resolver,
      key: entry.key,
      outcome: entry.outcome,
      instances: entry.instances.length,
      ttlReceivedSeconds: entry.ttlReceivedSeconds,
      ttlClampedMs: entry.ttlClampedMs,
      ageMs: Math.round(entry.ageMs),
      isStale: entry.isStale,
      isInEmptyGrace: entry.isInEmptyGrace,
      nameserver: entry.nameserver,
      transport: entry.transport,
      lastError: entry.lastError?.code
    })))
  }
}
