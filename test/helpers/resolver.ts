import { DnsResolver } from '../../src/dns/resolver.js'
import { DnsTransport } from '../../src/dns/transport.js'
import type { DnsObserver, QueryOutcome, RejectionReason, Transport } from '../../src/dns/types.js'
import { parseAddress, type Address } from '../../src/util/address.js'

/** Everything the DNS layer reported, for assertions. */
export class RecordingObserver implements DnsObserver {
  readonly queries: Array<{ nameserver: string, transport: Transport, outcome: QueryOutcome }> = []
  readonly rejections: Array<{ nameserver: string, transport: Transport, reason: RejectionReason, detail: string }> = []
  queried (event: { nameserver: string, transport: Transport, outcome: QueryOutcome }): void { this.queries.push(event) }
  answerRejected (event: { nameserver: string, transport: Transport, reason: RejectionReason, detail: string }): void { this.rejections.push(event) }
}

export function address (text: string): Address {
  const parsed = parseAddress(text)
  if (parsed === undefined) throw new Error(`not an address: ${text}`)
  return parsed
}

/** A real resolver (real transport, real sockets) against test nameservers. */
export function makeResolver (nameservers: string[], options: { timeoutMs?: number, attempts?: number, ednsPayload?: number } = {}) {
  const observer = new RecordingObserver()
  const resolver = new DnsResolver({
    nameservers: nameservers.map(address),
    timeoutMs: options.timeoutMs ?? 300,
    attempts: options.attempts ?? nameservers.length,
    ednsPayload: options.ednsPayload ?? 4096
  }, new DnsTransport(observer))
  return { resolver, observer }
}

/** Instances 10.x.y.z:8000+i, as many as asked. */
export function manyInstances (count: number, base = 8000): Array<{ address: string, port: number }> {
  return Array.from({ length: count }, (_, index) => ({ address: `10.1.${index >> 8}.${index & 255}`, port: base + index }))
}
