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
  /** DO: the DNSSEC OK bit, which an answer copies (RFC 3225 §3). */
  readonly opt: { readonly udpPayloadSize: number, readonly version: number, readonly isDnssecOk: boolean } | undefined
}

const HEADER_SIZE = 12
const TYPE_OPT = 41
const MAX_NAME_OCTETS = 255
/** Where a name is assembled (one process, one query at a time: the reader never yields). */
const NAME = Buffer.alloc(MAX_NAME_OCTETS)

export function readPlainQuery (query: Buffer): PlainQuery | undefined {
  if (query.length < HEADER_SIZE + 5) return undefined
  // QR 0, opcode 0 (QUERY); the other flags are the client's.
  if (((query[2] as number) & 0xf8) !== 0) return undefined
  if (query.readUInt16BE(4) !== 1 || query.readUInt16BE(6) !== 0 || query.readUInt16BE(8) !== 0) return undefined
  const additionals = query.readUInt16BE(10)
  if (additionals > 1) return undefined
  // The name's octets copied once into a scratch buffer, lower-cased, length octets turned into
  // dots: one string made a query (not one a label, then a join and a toLowerCase).
  let offset = HEADER_SIZE
  let size = 0
  for (;;) {
    const length = query[offset]
    if (length === undefined || length >= 0x40) return undefined
    offset++
    if (length === 0) break
    if (offset + length > query.length || size + length + 1 > MAX_NAME_OCTETS) return undefined
    if (size > 0) NAME[size++] = 0x2e
    for (const end = offset + length; offset < end; offset++) {
      const octet = query[offset] as number
      const lower = octet >= 0x41 && octet <= 0x5a ? octet | 0x20 : octet
      if (!isHostnameOctet(lower)) return undefined
      NAME[size++] = lower
    }
  }
  const name = NAME.toString('latin1', 0, size)
  if (offset - HEADER_SIZE > MAX_NAME_OCTETS || offset + 4 > query.length) return undefined
  const type = query.readUInt16BE(offset)
  const klass = query.readUInt16BE(offset + 2)
  const questionEnd = offset + 4
  if (additionals === 0) return questionEnd === query.length ? { name, type, class: klass, questionEnd, opt: undefined } : undefined
  // The OPT: the root's name, type 41, the UDP size as its class, extended RCODE, version, flags, then its options.
  if (questionEnd + 11 > query.length || query[questionEnd] !== 0 || query.readUInt16BE(questionEnd + 1) !== TYPE_OPT) return undefined
  if (questionEnd + 11 + query.readUInt16BE(questionEnd + 9) !== query.length) return undefined
  // An extended RCODE with its top bit set: dns2 clamps the whole field (and reads version 255); left to it, so both paths agree.
  if ((query[questionEnd + 5] as number) >= 0x80 || !areOptionsPlain(query, questionEnd + 11)) return undefined
  const opt = { udpPayloadSize: query.readUInt16BE(questionEnd + 3), version: query[questionEnd + 6] as number, isDnssecOk: ((query[questionEnd + 7] as number) & 0x80) !== 0 }
  return { name, type, class: klass, questionEnd, opt }
}

/**
 * The OPT's options, from `start` to the end: each a 4-octet header and its
 * length, exactly filling the data. Client subnet (8) and extended error (15)
 * have contents dns2 checks: left to it.
 */
function areOptionsPlain (query: Buffer, start: number): boolean {
  let offset = start
  while (offset < query.length) {
    if (offset + 4 > query.length) return false
    const code = query.readUInt16BE(offset)
    const length = query.readUInt16BE(offset + 2)
    if (code === 8 || code === 15 || offset + 4 + length > query.length) return false
    offset += 4 + length
  }
  return true
}

/** Lower-case letters, digits, hyphen and underscore (SRV's _service._proto): what dns2 and this reader would name alike. */
function isHostnameOctet (octet: number): boolean {
  return (octet >= 0x61 && octet <= 0x7a) || (octet >= 0x30 && octet <= 0x39) || octet === 0x2d || octet === 0x5f
}

/** At most this many compression pointers followed in one name (RFC 1035 §4.1.4 sets no limit; loops must end). */
const MAX_POINTERS = 32

/**
 * The question's name as its labels, octet for octet (latin1, lower case),
 * compression pointers followed, and where the question ends; undefined for
 * a name that cannot be read. dns2 joins labels with dots, so a label holding
 * a dot (`web\.srvgate` is one label) reads as two there: this tells them apart.
 */
export function questionLabels (query: Buffer): { readonly labels: readonly string[], readonly questionEnd: number } | undefined {
  const labels: string[] = []
  let offset = HEADER_SIZE
  let nameEnd: number | undefined
  for (let pointers = 0; ;) {
    const length = query[offset]
    if (length === undefined) return undefined
    if (length >= 0xc0) {
      if (offset + 2 > query.length || ++pointers > MAX_POINTERS) return undefined
      nameEnd ??= offset + 2
      offset = query.readUInt16BE(offset) & 0x3fff
      continue
    }
    if (length >= 0x40 || offset + 1 + length > query.length) return undefined
    if (length === 0) {
      nameEnd ??= offset + 1
      break
    }
    labels.push(query.toString('latin1', offset + 1, offset + 1 + length).toLowerCase())
    offset += 1 + length
  }
  return nameEnd + 4 <= query.length ? { labels, questionEnd: nameEnd + 4 } : undefined
}
