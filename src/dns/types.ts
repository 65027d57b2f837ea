/** The record types srvgate asks for. */
export type RecordType = 'SRV' | 'A' | 'AAAA'
export type Transport = 'udp' | 'tcp'

export type Question = { readonly name: string, readonly type: RecordType }

export type SrvRecord = {
  readonly target: string
  readonly port: number
  readonly priority: number
  readonly weight: number
  readonly ttl: number
}

export type AddressRecord = {
  readonly name: string
  readonly address: string
  readonly family: 4 | 6
  readonly ttl: number
}

/** One query's validated answer, as received from one nameserver. */
export type DnsMessage = {
  readonly rcode: number
  readonly srv: readonly SrvRecord[]
  /** A/AAAA records in the answer section. */
  readonly addresses: readonly AddressRecord[]
  /** A/AAAA records in the additional section (SRV targets' addresses). */
  readonly additionalAddresses: readonly AddressRecord[]
  /** Smallest TTL of the answer section's records; undefined with no records. */
  readonly minTtl: number | undefined
  readonly nameserver: string
  readonly transport: Transport
  /** Why the query went to TCP, when it did. */
  readonly tcpReason: 'tc-bit' | 'near-size-limit' | 'udp-answer-malformed' | undefined
}

/** An instance as DNS describes it: an address and port, with RFC 2782 priority and weight. */
export type DiscoveredInstance = {
  readonly address: string
  readonly port: number
  readonly priority: number
  readonly weight: number
  /** The SRV target or A/AAAA name the address came from. */
  readonly target: string
}

/**
 * What a name resolves to. NXDOMAIN and "no records of this type" (NOERROR,
 * empty) are different answers; SERVFAIL and timeouts are not answers at all
 * and are thrown as DnsError.
 */
export type Resolution = {
  readonly outcome: 'answer' | 'nxdomain' | 'nodata'
  /** Sorted by priority (lowest first), then weight (highest first), then address. */
  readonly instances: readonly DiscoveredInstance[]
  /** Smallest TTL, in seconds, over the records used; undefined with no records. */
  readonly ttlSeconds: number | undefined
  readonly nameserver: string
  readonly transport: Transport
  readonly tcpReason: DnsMessage['tcpReason']
}

/** Why an answer was not believed. Stable strings: they label the rejected-answer metric. */
export type RejectionReason =
  | 'malformed'
  | 'not-a-response'
  | 'id-mismatch'
  | 'question-mismatch'
  | 'truncated-packet'
  | 'oversized'
  | 'bad-opcode'

export type QueryOutcome =
  | 'noerror' | 'nxdomain' | 'servfail' | 'refused' | 'other-rcode'
  | 'timeout' | 'unreachable' | 'rejected' | 'error'

/** Receives what the DNS layer saw; the admin metrics and `srvgate resolve` listen here. */
export interface DnsObserver {
  queried (event: { readonly nameserver: string, readonly transport: Transport, readonly outcome: QueryOutcome }): void
  answerRejected (event: { readonly nameserver: string, readonly transport: Transport, readonly reason: RejectionReason, readonly detail: string }): void
}

export const silentObserver: DnsObserver = { queried () {}, answerRejected () {} }
