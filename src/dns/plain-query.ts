/**
 * The common query read without dns2 (its decoder reads bit by bit, a
 * microsecond or two a query): one question whose name is plain hostname
 * labels, no answer or authority records, at most one additional record and
 * that one an OPT, nothing after it, opcode QUERY. Anything else is
 * undefined, and the responder lets dns2 decode it and decide (FORMERR,
 * NOTIMP, names with other octets).
 */
export type PlainQuery = {
  /** Lower case, no final dot; '' for the root. */
  readonly name: string
  readonly type: number
  readonly class: number
  /** Where the question ends: the answer's prefix, and what a cached answer is keyed by. */
  readonly questionEnd: number
  readonly opt: { readonly udpPayloadSize: number, readonly version: number } | undefined
}

const HEADER_SIZE = 12
const TYPE_OPT = 41
const MAX_NAME_OCTETS = 255

export function readPlainQuery (query: Buffer): PlainQuery | undefined {
  if (query.length < HEADER_SIZE + 5) return undefined
  // QR 0, opcode 0 (QUERY); the other flags are the client's.
  if (((query[2] as number) & 0xf8) !== 0) return undefined
  if (query.readUInt16BE(4) !== 1 || query.readUInt16BE(6) !== 0 || query.readUInt16BE(8) !== 0) return undefined
  const additionals = query.readUInt16BE(10)
  if (additionals > 1) return undefined
  let offset = HEADER_SIZE
  const labels: string[] = []
  for (;;) {
    const length = query[offset]
    if (length === undefined || length >= 0x40) return undefined
    offset++
    if (length === 0) break
    if (offset + length > query.length || !isHostnameLabel(query, offset, length)) return undefined
    labels.push(query.toString('latin1', offset, offset + length).toLowerCase())
    offset += length
  }
  if (offset - HEADER_SIZE > MAX_NAME_OCTETS || offset + 4 > query.length) return undefined
  const type = query.readUInt16BE(offset)
  const klass = query.readUInt16BE(offset + 2)
  const questionEnd = offset + 4
  if (additionals === 0) return questionEnd === query.length ? { name: labels.join('.'), type, class: klass, questionEnd, opt: undefined } : undefined
  // The OPT: the root's name, type 41, the UDP size as its class, extended RCODE, version, flags, then its options.
  if (questionEnd + 11 > query.length || query[questionEnd] !== 0 || query.readUInt16BE(questionEnd + 1) !== TYPE_OPT) return undefined
  if (questionEnd + 11 + query.readUInt16BE(questionEnd + 9) !== query.length) return undefined
  const opt = { udpPayloadSize: query.readUInt16BE(questionEnd + 3), version: query[questionEnd + 6] as number }
  return { name: labels.join('.'), type, class: klass, questionEnd, opt }
}

/** Letters, digits, hyphen and underscore (SRV's _service._proto): what dns2 and this reader would name alike. */
function isHostnameLabel (query: Buffer, start: number, length: number): boolean {
  for (let index = start; index < start + length; index++) {
    const octet = query[index] as number
    const isLetter = (octet >= 0x61 && octet <= 0x7a) || (octet >= 0x41 && octet <= 0x5a)
    if (!isLetter && !(octet >= 0x30 && octet <= 0x39) && octet !== 0x2d && octet !== 0x5f) return false
  }
  return true
}
