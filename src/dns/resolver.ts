import { DnsError, ErrorCode } from '../errors.js'
import type { Address } from '../util/address.js'
import type { DnsTransport } from './transport.js'
import type { AddressRecord, DiscoveredInstance, DnsMessage, Question, Resolution } from './types.js'

/** What to resolve: an SRV name, or an A/AAAA name plus a fixed port (DNS-only legacy services). */
export type Lookup =
  | { readonly kind: 'srv', readonly name: string }
  | { readonly kind: 'address', readonly name: string, readonly port: number }

/** Where SRV targets' addresses are looked up (cached by dns/cache.ts's TargetAddressCache). */
export interface TargetAddresses {
  addresses (target: string, query: () => Promise<readonly AddressRecord[]>): Promise<readonly AddressRecord[]>
}

/** No caching: every refresh asks again (`srvgate resolve`). */
const UNCACHED: TargetAddresses = { addresses: async (_target, query) => await query() }

/** The seam the cache stands on. */
export interface Resolver {
  resolve (lookup: Lookup): Promise<Resolution>
}

export type DnsResolverOptions = {
  readonly nameservers: readonly Address[]
  readonly timeoutMs: number
  readonly attempts: number
  readonly ednsPayload: number
}

const RCODE_NOERROR = 0
const RCODE_NXDOMAIN = 3
const RCODE_SERVFAIL = 2
const RCODE_REFUSED = 5
/** SRV targets without an address in the additional section are looked up this many at a time. */
const TARGET_LOOKUP_CONCURRENCY = 8

/**
 * Resolves through the configured nameservers only: in order, failing over,
 * `attempts` queries in all (never a library's public defaults, never all at
 * once). NXDOMAIN and NOERROR-with-no-records are answers; SERVFAIL, REFUSED,
 * timeouts and rejected answers make it try the next nameserver.
 */
export class DnsResolver implements Resolver {
  readonly #options: DnsResolverOptions
  readonly #transport: DnsTransport
  readonly #targets: TargetAddresses

  constructor (options: DnsResolverOptions, transport: DnsTransport, targets: TargetAddresses = UNCACHED) {
    if (options.nameservers.length === 0) throw new Error('DnsResolver needs at least one nameserver')
    this.#options = options
    this.#transport = transport
    this.#targets = targets
  }

  async resolve (lookup: Lookup): Promise<Resolution> {
    return lookup.kind === 'srv' ? await this.#resolveSrv(lookup.name) : await this.#resolveAddress(lookup.name, lookup.port)
  }

  /** One question, with failover over the nameservers. */
  async query (question: Question): Promise<DnsMessage> {
    const { nameservers, attempts, timeoutMs, ednsPayload } = this.#options
    let lastError: DnsError | undefined
    for (let attempt = 0; attempt < attempts; attempt++) {
      const nameserver = nameservers[attempt % nameservers.length] as Address
      try {
        const message = await this.#transport.query(nameserver, question, { timeoutMs, ednsPayload })
        if (message.rcode === RCODE_NOERROR || message.rcode === RCODE_NXDOMAIN) return message
        lastError = rcodeError(message.rcode, nameserver.label, question)
      } catch (error) {
        if (!(error instanceof DnsError)) throw error
        lastError = error
      }
    }
    throw lastError as DnsError
  }

  async #resolveSrv (name: string): Promise<Resolution> {
    const message = await this.query({ name, type: 'SRV' })
    // RFC 2782: a target of "." means "decidedly not available here"; port 0 reaches nothing.
    const records = message.srv.filter((record) => record.target !== '' && record.port > 0)
    if (message.rcode === RCODE_NXDOMAIN || records.length === 0) return emptyResolution(message)
    const addressesByTarget = groupByName(message.additionalAddresses)
    const missing = [...new Set(records.map((record) => record.target))]
      .filter((target) => !addressesByTarget.has(target) && decodeConsulAddr(target) === undefined)
    await this.#resolveTargets(missing, addressesByTarget)

    const instances: DiscoveredInstance[] = []
    let ttlSeconds = message.minTtl
    for (const record of records) {
      const found = addressesByTarget.get(record.target)
      const addresses = found ?? []
      const decoded = decodeConsulAddr(record.target)
      if (addresses.length === 0 && decoded !== undefined) addresses.push({ name: record.target, address: decoded, family: decoded.includes(':') ? 6 : 4, ttl: record.ttl })
      for (const address of addresses) {
        instances.push({ address: address.address, port: record.port, priority: record.priority, weight: record.weight, target: record.target })
        ttlSeconds = Math.min(ttlSeconds ?? address.ttl, address.ttl)
      }
    }
    if (instances.length === 0) {
      throw new DnsError(ErrorCode.DNS_NO_ADDRESS, `no address found for any target of ${name}`, { nameserver: message.nameserver })
    }
    return { outcome: 'answer', instances: dedupe(sortInstances(instances)), ttlSeconds, nameserver: message.nameserver, transport: message.transport, tcpReason: message.tcpReason }
  }

  /** Targets Consul did not put in the additional section are resolved through the same nameservers. */
  async #resolveTargets (targets: readonly string[], into: Map<string, AddressRecord[]>): Promise<void> {
    for (let start = 0; start < targets.length; start += TARGET_LOOKUP_CONCURRENCY) {
      await Promise.all(targets.slice(start, start + TARGET_LOOKUP_CONCURRENCY).map(async (target) => {
        try {
          const records = await this.#targets.addresses(target, async () => await this.#queryAddresses(target))
          if (records.length > 0) into.set(target, [...records])
        } catch {
          // One unresolvable target leaves the others usable; an answer with none fails above.
        }
      }))
    }
  }

  async #resolveAddress (name: string, port: number): Promise<Resolution> {
    const v4 = await this.query({ name, type: 'A' })
    if (v4.rcode === RCODE_NXDOMAIN) return emptyResolution(v4)
    const v6 = await this.query({ name, type: 'AAAA' })
    const records = [...v4.addresses, ...v6.addresses]
    if (records.length === 0) return emptyResolution(v4)
    const instances = records.map((record): DiscoveredInstance => ({ address: record.address, port, priority: 0, weight: 1, target: record.name }))
    const ttlSeconds = Math.min(...records.map((record) => record.ttl))
    return { outcome: 'answer', instances: dedupe(sortInstances(instances)), ttlSeconds, nameserver: v4.nameserver, transport: v4.transport, tcpReason: v4.tcpReason }
  }

  async #queryAddresses (name: string): Promise<AddressRecord[]> {
    const v4 = await this.query({ name, type: 'A' })
    if (v4.addresses.length > 0 || v4.rcode === RCODE_NXDOMAIN) return [...v4.addresses]
    return [...(await this.query({ name, type: 'AAAA' })).addresses]
  }
}

function rcodeError (rcode: number, nameserver: string, question: Question): DnsError {
  const code = rcode === RCODE_SERVFAIL ? ErrorCode.DNS_SERVFAIL : rcode === RCODE_REFUSED ? ErrorCode.DNS_REFUSED : ErrorCode.DNS_BAD_RCODE
  const label = rcode === RCODE_SERVFAIL ? 'SERVFAIL' : rcode === RCODE_REFUSED ? 'REFUSED' : `rcode ${rcode}`
  return new DnsError(code, `${nameserver} answered ${label} for ${question.name} ${question.type}`, { nameserver, rcode })
}

function emptyResolution (message: DnsMessage): Resolution {
  return {
    outcome: message.rcode === RCODE_NXDOMAIN ? 'nxdomain' : 'nodata',
    instances: [],
    ttlSeconds: undefined,
    nameserver: message.nameserver,
    transport: message.transport,
    tcpReason: message.tcpReason
  }
}

function groupByName (records: readonly AddressRecord[]): Map<string, AddressRecord[]> {
  const byName = new Map<string, AddressRecord[]>()
  for (const record of records) {
    const list = byName.get(record.name)
    if (list === undefined) byName.set(record.name, [record])
    else list.push(record)
  }
  return byName
}

/**
 * Consul names instances registered with an explicit address
 * `<hex>.addr.<dc>.<domain>`: 8 hex digits for IPv4 (7f000001 = 127.0.0.1),
 * 32 for IPv6. Decoded here; no nameserver but Consul could resolve them.
 */
export function decodeConsulAddr (target: string): string | undefined {
  const match = /^([0-9a-f]{8}|[0-9a-f]{32})\.addr\./i.exec(target)
  if (match === null) return undefined
  const hex = (match[1] as string).toLowerCase()
  if (hex.length === 8) return [0, 2, 4, 6].map((at) => parseInt(hex.slice(at, at + 2), 16)).join('.')
  const groups = Array.from({ length: 8 }, (_, group) => parseInt(hex.slice(group * 4, group * 4 + 4), 16).toString(16))
  return compressIpv6(groups)
}

/** RFC 5952 text form: the longest run (≥ 2) of zero groups becomes `::`. */
function compressIpv6 (groups: readonly string[]): string {
  let bestStart = -1
  let bestLength = 0
  for (let start = 0; start < groups.length; start++) {
    let length = 0
    while (groups[start + length] === '0') length++
    if (length > bestLength) { bestStart = start; bestLength = length }
  }
  if (bestLength < 2) return groups.join(':')
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`
}

/**
 * One instance per address:port. Input is sorted (sortInstances), so the
 * record kept is the one with the best priority, then the largest weight:
 * the same answer in any (Consul-shuffled) order gives the same instance set.
 */
function dedupe (instances: readonly DiscoveredInstance[]): DiscoveredInstance[] {
  const seen = new Set<string>()
  return instances.filter((instance) => {
    const key = `${instance.address}|${instance.port}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** RFC 2782: lowest priority first; within one, heavier first; then a stable order (Consul shuffles). */
export function sortInstances (instances: DiscoveredInstance[]): DiscoveredInstance[] {
  return instances.sort((a, b) => a.priority - b.priority || b.weight - a.weight ||
    (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port))
}
