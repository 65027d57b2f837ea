import { networkInterfaces } from 'node:os'
import type { AddressPolicyConfig, GatewayConfig } from '../config/types.js'
import type { Address } from '../util/address.js'
import { CidrSet, parseCidr, type Cidr } from '../util/cidr.js'

/**
 * Addresses that are never an instance, whatever DNS says: the unspecified
 * addresses, multicast, broadcast, and the cloud metadata endpoints (an SRV
 * record pointing there would hand instance credentials to the internet).
 */
const NEVER = new CidrSet(['0.0.0.0/32', '::/128', '224.0.0.0/4', 'ff00::/8', '255.255.255.255/32', '169.254.169.254/32', 'fd00:ec2::254/128']
  .map((text) => parseCidr(text) as Cidr))

const LOOPBACK = new CidrSet(['127.0.0.0/8', '::1/128'].map((text) => parseCidr(text) as Cidr))

/** srvgate's own listeners, as address:port pairs an instance must never be. */
export type OwnListeners = ReadonlyArray<{ readonly name: string, readonly port: number, readonly addresses: CidrSet | 'any-local' }>

export function ownListeners (config: GatewayConfig): OwnListeners {
  // dns.listen too: an HTTP request sent to the DNS face's TCP port reads as a length prefix
  // ("GE" = 18245 bytes) and would wait there until timeouts.response.
  const named: Array<[string, Address | undefined]> = [['listen.http', config.listen.http], ['listen.https', config.listen.https], ['listen.admin', config.listen.admin],
    ...(config.dns?.listen ?? []).map((address): [string, Address] => ['dns.listen', address])]
  return named.filter((entry): entry is [string, Address] => entry[1] !== undefined).map(([name, address]) => {
    const { host, port } = address
    const isWildcard = host === '0.0.0.0' || host === '::'
    const single = parseCidr(host === 'localhost' ? '127.0.0.1' : host)
    return { name, port, addresses: isWildcard || single === undefined ? 'any-local' : new CidrSet([single]) }
  })
}

/**
 * Decides whether a discovered address:port may be an instance. Checked when
 * an answer is applied (not per request): refusals are shown with their
 * reason in /admin/state. Order: srvgate's own listeners, built-in refusals,
 * the resolver's deny and allow lists, then the backend's.
 */
export class AddressPolicy {
  readonly #policies: readonly AddressPolicyConfig[]
  readonly #own: OwnListeners
  readonly #localAddresses: () => CidrSet

  constructor (policies: ReadonlyArray<AddressPolicyConfig | undefined>, own: OwnListeners, localAddresses: () => CidrSet = currentLocalAddresses) {
    this.#policies = policies.filter((policy): policy is AddressPolicyConfig => policy !== undefined)
    this.#own = own
    this.#localAddresses = localAddresses
  }

  /** Why `address:port` is refused, or undefined when it may be used. */
  refusal (address: string, port: number): string | undefined {
    for (const listener of this.#own) {
      if (listener.port !== port) continue
      const isOurs = listener.addresses === 'any-local'
        ? LOOPBACK.matches(address) || this.#localAddresses().matches(address)
        : listener.addresses.matches(address)
      if (isOurs) return `srvgate's own ${listener.name} listener`
    }
    const never = NEVER.find(address)
    if (never !== undefined) return `never an instance (${never.label})`
    for (const policy of this.#policies) {
      const denied = policy.deny.find(address)
      if (denied !== undefined) return `addressPolicy.deny ${denied.label}`
      if (policy.allow !== undefined && !policy.allow.matches(address)) return 'not in addressPolicy.allow'
    }
    return undefined
  }
}

/** This host's interface addresses, read when asked (interfaces come and go; asked only for a port srvgate listens on). */
function currentLocalAddresses (): CidrSet {
  const blocks = Object.values(networkInterfaces()).flatMap((list) => list ?? [])
    .map((item) => parseCidr(item.address.split('%')[0] as string))
    .filter((block): block is Cidr => block !== undefined)
  return new CidrSet(blocks)
}
