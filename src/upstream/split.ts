import { hash32 } from '../balance/hash.js'
import { SmoothWeighted } from '../balance/smooth-weighted.js'
import type { HashKey, SplitConfig } from '../config/types.js'
import type { Backend } from './backend.js'

export type SplitMember = { readonly backend: Backend, readonly weight: number }

const memberIndex = (_member: SplitMember, index: number): number => index

/**
 * A backend made of backends (Consul's service-splitter): each request goes
 * to one member, by weight, among the members that have a usable instance,
 * so an emptied member's share goes to the others and never anywhere else
 * (a member whose instances are all ejected is emptied too).
 * Without a sticky key the shares are exact (smooth weighted round-robin,
 * as nginx); with one, weighted rendezvous hashing sends a key to the same
 * member on every replica, with no state, and moves only the keys of a
 * member that leaves or whose weight changes.
 */
export class Split {
  readonly name: string
  /** The name metrics use: the template (`web-{env}`) for a templated split, the name otherwise. */
  readonly metricLabel: string
  readonly stickyOn: HashKey | undefined
  readonly members: readonly SplitMember[]
  /** Smooth weighted round-robin state, keyed by member index. */
  readonly #rotation = new SmoothWeighted<number>()

  constructor (config: SplitConfig, backendOf: (name: string) => Backend, metricLabel = config.name) {
    this.name = config.name
    this.metricLabel = metricLabel
    this.stickyOn = config.stickyOn
    this.members = config.members.map(({ backend, weight }) => ({ backend: backendOf(backend), weight }))
  }

  /** Its members, by index, are these backends (a templated split's members are remade when reclaimed). */
  isOver (backends: readonly Backend[]): boolean {
    return backends.length === this.members.length && backends.every((backend, index) => this.members[index]?.backend === backend)
  }

  /** The member for a request (its sticky key, if any); undefined when no member has a usable instance. */
  choose (key: string | undefined): Backend | undefined {
    return key === undefined ? this.#rotate(undefined) : this.#rendezvous(key, undefined)
  }

  /**
   * Another member for a request whose member has no instance left to try
   * after a connect failure (nothing was sent, so nothing is replayed): by
   * the same rule as `choose`, among the members with a usable instance not
   * in `tried`. A sticky key's second choice is the same on every replica.
   */
  chooseUntried (key: string | undefined, tried: ReadonlySet<string>): Backend | undefined {
    return key === undefined ? this.#rotate(tried) : this.#rendezvous(key, tried)
  }

  static #isOpen (backend: Backend, tried: ReadonlySet<string> | undefined): boolean {
    return tried === undefined ? backend.hasUsableInstance() : backend.hasUntriedInstance(tried)
  }

  #rotate (tried: ReadonlySet<string> | undefined): Backend | undefined {
    const weightOf = (member: SplitMember): number => member.weight === 0 || !Split.#isOpen(member.backend, tried) ? 0 : member.weight
    return this.#rotation.pick(this.members, memberIndex, weightOf)?.backend
  }

  #rendezvous (key: string, tried: ReadonlySet<string> | undefined): Backend | undefined {
    let best: Backend | undefined
    let bestScore = -Infinity
    for (const { backend, weight } of this.members) {
      if (weight === 0 || !Split.#isOpen(backend, tried)) continue
      // A uniform draw in (0, 1) per key and member; -weight / ln(u) makes the winner's odds its weight's share.
      const draw = (hash32(`${key}\u0000${backend.name}`) + 0.5) / 4294967296
      const score = -weight / Math.log(draw)
      if (score > bestScore) { best = backend; bestScore = score }
    }
    return best
  }
}
