import type { GatewayConfig } from '../config/types.js'
import type { Address } from '../util/address.js'
import type { FaceInstance, FaceTarget, FaceView } from '../dns/responder.js'
import type { Backend } from './backend.js'
import type { BackendRegistry } from './registry.js'

const NOTHING_TRIED: ReadonlySet<string> = new Set()

/**
 * What the DNS face answers, read from the gateway's own view at query
 * time: a name's backend (or the failover target serving for it now), its
 * usable instances (in DNS, not ejected, not failing checks), staleness; a
 * `gateway: true` name, srvgate's own public address.
 */
export function faceView (config: GatewayConfig, registry: BackendRegistry, gateway: FaceInstance | undefined, local?: string): FaceView | undefined {
  const dns = config.dns
  if (dns === undefined) return undefined
  const target = (label: string): FaceTarget | undefined => {
    const entry = dns.names.get(label)
    if (entry === undefined) return undefined
    if (entry.kind === 'gateway') return { kind: 'gateway', instances: gateway === undefined ? [] : [gateway], version: gateway === undefined ? 'none' : `${gateway.address}:${gateway.port}` }
    const backend = registry.get(entry.backend)
    return backend === undefined ? { kind: 'instances', instances: [], preferred: [], isStale: false, version: 'none' } : backendTarget(backend)
  }
  return {
    zone: dns.zone,
    nameserver: { name: dns.nameserver, addresses: nameserverAddresses(dns.listen, local) },
    ttlSeconds: dns.ttlSeconds,
    target,
    isKnownAddress: (address) => [...dns.names.keys()].some((label) => target(label)?.instances.some((instance) => instance.address === address) === true)
  }
}

/**
 * faceView for each query, made once per routing state and local address:
 * a view reads the registry live (target() asks it per query), so only a
 * new configuration generation (a new state) or another local address needs
 * a new one. Saves the view's objects and closures on every query.
 */
export function faceViews (state: () => { readonly config: GatewayConfig, readonly registry: BackendRegistry }): (gateway: FaceInstance | undefined, local: string) => FaceView | undefined {
  let viewsOf: object | undefined
  let views = new Map<string, FaceView | undefined>()
  // The last one asked: queries come in runs from one local address (and the face keeps its gateway object per address).
  let last: { readonly gateway: FaceInstance | undefined, readonly local: string, readonly view: FaceView | undefined } | undefined
  return (gateway, local) => {
    const current = state()
    if (current !== viewsOf) {
      viewsOf = current
      views = new Map()
      last = undefined
    }
    if (last !== undefined && last.gateway === gateway && last.local === local) return last.view
    const key = gateway === undefined ? local : `${local} ${gateway.address}:${gateway.port}`
    let view = views.get(key)
    if (view === undefined && !views.has(key)) {
      view = faceView(current.config, current.registry, gateway, local)
      views.set(key, view)
    }
    last = { gateway, local, view }
    return view
  }
}

/**
 * The addresses of the face's own name: every dns.listen host but the
 * unspecified ones (0.0.0.0, ::), and `local`, the address a query came in
 * on, when only an unspecified one took it (known over TCP; a UDP socket is
 * not told which address a datagram was sent to).
 */
export function nameserverAddresses (listen: readonly Address[], local?: string): string[] {
  const hosts = [...new Set(listen.map((address) => address.host))].filter((host) => !isUnspecified(host))
  return local === undefined || isUnspecified(local) || local === '' || hosts.includes(local) ? hosts : [...hosts, local]
}

function isUnspecified (host: string): boolean {
  return host === '0.0.0.0' || host === '::'
}

/** Targets made from a backend's usable groups, by the groups' identity: one per change, not one per query. */
const targetsOf = new WeakMap<object, { readonly fresh: FaceTarget, readonly stale: FaceTarget }>()

/** The instances the gateway would choose from now: the serving backend of a failover chain, lowest group first. */
function backendTarget (backend: Backend): FaceTarget {
  const serving = backend.serving(NOTHING_TRIED)
  // The backend keeps its usable groups by identity until its set or an instance's health changes.
  const usable = serving.usableGroups()
  let targets = targetsOf.get(usable)
  if (targets === undefined) {
    const groups = usable.filter((group) => group.length > 0)
    const made = (isStale: boolean): FaceTarget => ({ kind: 'instances', instances: groups.flat(), preferred: groups[0] ?? [], isStale, version: usable })
    targets = { fresh: made(false), stale: made(true) }
    targetsOf.set(usable, targets)
  }
  return serving.snapshot.isStale ? targets.stale : targets.fresh
}
