import { Packet } from 'dns2'

/**
 * The DNS face's answers that carry no records: a header alone for what
 * cannot be read, the question echoed with an error RCODE, BADVERS.
 */

type DecodedPacket = InstanceType<typeof Packet>
type Record = InstanceType<typeof Packet.Resource>

/** RFC 6891's extended RCODE for an EDNS version not implemented. */
const BADVERS = 16

/** A header-only answer (FORMERR for a question that could not be read): the ID and opcode echoed, QR set. */
export function headerOnly (query: Buffer, rcode: number): Buffer {
  const answer = Buffer.alloc(Packet.HEADER_SIZE)
  query.copy(answer, 0, 0, 2)
  // QR=1, the query's opcode and RD; AA, TC, RA, Z cleared.
  answer[2] = 0x80 | ((query[2] as number) & 0x79)
  answer[3] = rcode & 0x0f
  return answer
}

/** The version in an OPT record: the second byte of its TTL field (RFC 6891 §6.1.3). */
export function ednsVersion (opt: Record): number {
  return (Number(opt.ttl) >>> 16) & 0xff
}

/**
 * RFC 6891 §6.1.3: a query of an EDNS version this server does not implement
 * (only 0 exists) is answered BADVERS, its OPT naming the version it does (0),
 * with no answer. BADVERS is 16, past the header's four bits: 1 in the OPT's
 * extended RCODE, 0 in the header.
 */
export function badVersion (request: DecodedPacket, udpPayloadSize: number): Buffer {
  const response = Packet.createResponseFromRequest(request)
  response.header.rcode = 0
  response.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize, extendedRcode: BADVERS >> 4, version: 0 }))
  return response.toBuffer() as Buffer
}

export function errorAnswer (request: DecodedPacket, rcode: number): Buffer {
  return Packet.createErrorResponseFromRequest(request, rcode).toBuffer() as Buffer
}

/**
 * An answer with no records that echoes the question exactly as it came
 * (its bytes, pointers and all: they point into the same header and
 * question), for names dns2 would echo otherwise (a label holding a dot).
 */
export function echoedQuestion (query: Buffer, questionEnd: number, rcode: number, isAuthoritative: boolean): Buffer {
  const answer = Buffer.from(query.subarray(0, questionEnd))
  // QR=1, opcode 0, AA as asked, RD echoed; TC, RA, Z cleared; one question, no records.
  answer[2] = 0x80 | (isAuthoritative ? 0x04 : 0) | ((query[2] as number) & 0x01)
  answer[3] = rcode & 0x0f
  answer.writeUInt16BE(1, 4)
  answer.writeUInt32BE(0, 6)
  answer.writeUInt16BE(0, 10)
  return answer
}
