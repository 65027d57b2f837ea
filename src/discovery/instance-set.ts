import type { DiscoveredInstance } from '../dns/types.js'
import { formatHostPort } from '../util/address.js'

/** A discovered `address:port`, ready for the proxy. Health is keyed by `key`, so it survives refreshes. */
export type Instance = {
  /** `10.0.0.1:8080`, `[fd00::1]:8080`: the identity health and metrics hang on. */
  readonly key: string
  readonly address: string
  readonly port: number
  readonly priority: number
  readonly weight: number
  /** `http://10.0.0.1:8080`: the undici pool origin. */
  readonly origin: string
  /** `https://10.0.0.1:8080`: the pool origin for a backend whose instances speak TLS. */
  readonly tlsOrigin: string
}

/** An immutable set of instances, grouped by RFC 2782 priority (lowest value first). */
export class InstanceSet {
  static readonly EMPTY = new InstanceSet([])

  readonly instances: readonly Instance[]
  /** Priority groups in order of preference; each group's instances in a stable order. */
  readonly groups: ReadonlyArray<readonly Instance[]>
  readonly #byKey: ReadonlyMap<string, Instance>

  constructor (instances: readonly Instance[]) {
    this.instances = Object.freeze([...instances])
    this.#byKey = new Map(instances.map((instance) => [instance.key, instance]))
    const priorities = [...new Set(instances.map((instance) => instance.priority))].sort((a, b) => a - b)
    this.groups = Object.freeze(priorities.map((priority) => Object.freeze(instances.filter((instance) => instance.priority === priority))))
  }

  static fromDiscovered (discovered: readonly DiscoveredInstance[]): InstanceSet {
    return new InstanceSet(discovered.map(toInstance))
  }

  get size (): number { return this.instances.length }
  has (key: string): boolean { return this.#byKey.has(key) }
  get (key: string): Instance | undefined { return this.#byKey.get(key) }

  /** What changed from `previous` to this set. An instance whose priority or weight changed counts as changed, not moved. */
  diff (previous: InstanceSet): { added: Instance[], removed: Instance[], changed: Instance[] } {
    const added = this.instances.filter((instance) => !previous.has(instance.key))
    const removed = previous.instances.filter((instance) => !this.has(instance.key))
    const changed = this.instances.filter((instance) => {
      const before = previous.get(instance.key)
      return before !== undefined && (before.priority !== instance.priority || before.weight !== instance.weight)
    })
    return { added, removed, changed }
  }

  /** Same instances with the same priority and weight. */
  equals (other: InstanceSet): boolean {
    if (other.size !== this.size) return false
    const { added, removed, changed } = this.diff(other)
    return added.length === 0 && removed.length === 0 && changed.length === 0
  }
}

export function toInstance (discovered: Pick<DiscoveredInstance, 'address' | 'port' | 'priority' | 'weight'>): Instance {
  const key = formatHostPort(discovered.address, discovered.port)
  return Object.freeze({ key, address: discovered.address, port: discovered.port, priority: discovered.priority, weight: discovered.weight, origin: `http://${key}`, tlsOrigin: `https://${key}` })
}
