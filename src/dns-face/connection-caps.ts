import { sourceBlock } from '../util/cidr.js'

/**
 * A TCP source: one IPv4 address, or one IPv6 /64 (what one host is given:
 * counted per /128, one host would hold a cap's worth per address it picks).
 */
const IPV4_BITS = 32
const IPV6_BITS = 64

export type ConnectionLimits = { readonly maxConnections: number, readonly maxConnectionsPerSource: number }

/** Why a new connection was turned away, or 'admitted'. */
export type Admission = 'admitted' | 'max-connections' | 'max-connections-per-source'

/**
 * The DNS face's TCP connection budget: a global cap (BIND's tcp-clients)
 * and a cap per source (RFC 7766 §6.2.2: servers MAY limit connections per
 * client address). Over a cap, the *new* connection is refused: connections
 * already open are never cut to make room, so a flood cannot push out the
 * clients that came first (the deadlines of dns.tcp clear what stalls).
 * The limits are read on each admission, so a reload changes them at once.
 */
export class ConnectionCaps {
  readonly #limits: () => ConnectionLimits
  readonly #bySource = new Map<string, number>()
  #open = 0

  constructor (limits: () => ConnectionLimits) {
    this.#limits = limits
  }

  /** Connections admitted and not yet released. */
  get open (): number { return this.#open }

  /** Counts a connection from `source` in, or says which cap refuses it (then nothing is counted). */
  admit (source: string): Admission {
    const { maxConnections, maxConnectionsPerSource } = this.#limits()
    if (this.#open >= maxConnections) return 'max-connections'
    const key = sourceBlock(source, IPV4_BITS, IPV6_BITS)
    const held = this.#bySource.get(key) ?? 0
    if (held >= maxConnectionsPerSource) return 'max-connections-per-source'
    this.#bySource.set(key, held + 1)
    this.#open++
    return 'admitted'
  }

  /** An admitted connection from `source` closed. */
  release (source: string): void {
    const key = sourceBlock(source, IPV4_BITS, IPV6_BITS)
    const held = this.#bySource.get(key)
    if (held === undefined) return
    if (held <= 1) this.#bySource.delete(key)
    else this.#bySource.set(key, held - 1)
    this.#open--
  }
}
