/**
 * What crosses the process boundary between a cluster's primary and its
 * workers (node:cluster IPC, JSON). Everything is by value: configuration as
 * the text the primary validated (each worker compiles the same bytes),
 * instance sets as plain instances, health as durations (each process has its
 * own monotonic clock). Every message about backends names the configuration
 * generation it belongs to, so a reload's new backends and the old ones never
 * mix.
 */
import type { DiscoverySnapshot, DiscoveryStatus, RefusedInstance } from '../discovery/watcher.js'
import { InstanceSet, toInstance } from '../discovery/instance-set.js'
import { DnsError, type ErrorCode } from '../errors.js'
import type { Backend, HealthView, Outcome } from '../upstream/backend.js'
import type { DataPlaneStats } from '../data-plane/stats.js'
import type { PublicAddresses } from '../data-plane/listeners.js'

/** One backend's discovery snapshot, by value. */
export type WireSnapshot = {
  readonly status: DiscoveryStatus
  readonly instances: ReadonlyArray<{ readonly address: string, readonly port: number, readonly priority: number, readonly weight: number }>
  readonly isStale: boolean
  readonly lastError: { readonly code: string, readonly message: string } | undefined
  readonly refused: readonly RefusedInstance[]
}

/** A backend as a worker needs it when it starts or prepares a generation. */
export type WireBackend = { readonly name: string, readonly snapshot: WireSnapshot, readonly health: readonly HealthView[] }

/** The primary could not make a templated backend (templatedBackends.max reached, all held): the worker forgets it. */
export const TEMPLATE_REFUSED = 'SG_TEMPLATE_BOUND'

export type ToWorker =
  | { readonly type: 'srvgate:config', readonly phase: 'init' | 'prepare', readonly generation: number, readonly text: string, readonly backends: readonly WireBackend[] }
  | { readonly type: 'srvgate:commit', readonly generation: number }
  | { readonly type: 'srvgate:abort', readonly generation: number }
  | { readonly type: 'srvgate:set', readonly generation: number, readonly name: string, readonly snapshot: WireSnapshot }
  | { readonly type: 'srvgate:health', readonly generation: number, readonly name: string, readonly health: HealthView }
  | { readonly type: 'srvgate:stats', readonly id: number }
  | { readonly type: 'srvgate:drain' }

export type ToPrimary =
  | { readonly type: 'srvgate:hello' }
  | { readonly type: 'srvgate:listening', readonly addresses: PublicAddresses }
  | { readonly type: 'srvgate:start-failed', readonly error: string }
  | { readonly type: 'srvgate:prepared', readonly generation: number, readonly error?: string }
  | { readonly type: 'srvgate:report', readonly generation: number, readonly name: string, readonly key: string, readonly outcome: Outcome }
  | { readonly type: 'srvgate:template', readonly generation: number, readonly name: string, readonly template: string, readonly env: string }
  | { readonly type: 'srvgate:release', readonly generation: number, readonly name: string }
  | { readonly type: 'srvgate:stats', readonly id: number, readonly stats: DataPlaneStats }

export function isToWorker (message: unknown): message is ToWorker {
  return isSrvgateMessage(message)
}

export function isToPrimary (message: unknown): message is ToPrimary {
  return isSrvgateMessage(message)
}

/** prom-client's own cluster messages share the channel: ours are prefixed. */
function isSrvgateMessage (message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('srvgate:')
}

export function toWire (snapshot: DiscoverySnapshot): WireSnapshot {
  return {
    status: snapshot.status,
    instances: snapshot.set.instances.map(({ address, port, priority, weight }) => ({ address, port, priority, weight })),
    isStale: snapshot.isStale,
    lastError: snapshot.lastError === undefined ? undefined : { code: snapshot.lastError.code, message: snapshot.lastError.message },
    refused: snapshot.refused
  }
}

/** The snapshot a worker keeps; `previous`'s set object is kept when nothing changed (readers compare by identity). */
export function fromWire (wire: WireSnapshot, previous: DiscoverySnapshot): DiscoverySnapshot {
  const set = new InstanceSet(wire.instances.map(toInstance))
  return {
    status: wire.status,
    set: set.equals(previous.set) ? previous.set : set,
    isStale: wire.isStale,
    lastError: wire.lastError === undefined ? undefined : new DnsError(wire.lastError.code as ErrorCode, wire.lastError.message),
    resolution: undefined,
    refused: wire.refused
  }
}

export function wireBackend (backend: Backend): WireBackend {
  return { name: backend.name, snapshot: toWire(backend.snapshot), health: backend.healthViews() }
}
