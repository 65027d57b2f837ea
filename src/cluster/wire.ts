/**
 * A backend's discovery snapshot and health by value, the way they cross the
 * process boundary (protocol.ts has their schemas).
 */
import type { DiscoverySnapshot } from '../discovery/watcher.js'
import { InstanceSet, toInstance } from '../discovery/instance-set.js'
import { DnsError } from '../errors.js'
import type { ControlBackend } from '../upstream/control-backend.js'
import type { WireBackend, WireSnapshot } from './protocol.js'

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
    lastError: wire.lastError === undefined ? undefined : new DnsError(wire.lastError.code, wire.lastError.message),
    resolution: undefined,
    refused: wire.refused
  }
}

export function wireBackend (backend: ControlBackend): WireBackend {
  return { name: backend.name, snapshot: toWire(backend.snapshot), health: backend.healthFacts() }
}
