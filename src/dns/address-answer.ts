import { isIP } from 'node:net'
import { Packet } from 'dns2'
import type { Random } from '../util/random.js'
import type { FaceInstance } from './responder.js'

/**
 * The DNS face's A and AAAA answers, written byte by byte (fixed 16- or
 * 28-octet records; dns2's encoder costs ~50 µs a message): the addresses of
 * an instance list encoded once, a new weighted draw for every query.
 */

const TYPE = Packet.TYPE
/**
 * Largest UDP answer whatever a client advertises, and the size the face's
 * OPT advertises (RFC 6891 §6.2.5): DNS flag day 2020's 1232, which BIND 9.18
 * also uses. A larger answer over UDP risks IP fragments, which are lost or
 * spoofed; past it the answer is cut with TC and the client asks over TCP.
 */
export const MAX_UDP_LIMIT = 1232

/** Distinct addresses of one family, their wire bytes, each weighted by the SRV weights of its instances (at least 1). */
export type EncodedAddresses = { readonly raws: readonly Buffer[], readonly weights: readonly number[], readonly isUniform: boolean }

export function encodedAddresses (instances: readonly FaceInstance[], family: 4 | 6): EncodedAddresses {
  const weights = new Map<string, number>()
  for (const instance of instances) {
    // Discovery and the listeners give IP literals; anything else would make a record of the wrong size.
    if (isIP(instance.address) !== family) continue
    weights.set(instance.address, (weights.get(instance.address) ?? 0) + Math.max(instance.weight, 1))
  }
  const raws = [...weights.keys()].map((address) => family === 4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address))
  const values = [...weights.values()]
  return { raws, weights: values, isUniform: values.every((weight) => weight === values[0]) }
}

/**
 * The first `count` indices of a weighted random order. Equal weights (the
 * common case): a partial Fisher–Yates shuffle, a uniform sample. Else
 * Efraimidis–Spirakis: key u^(1/w), highest first, so a prefix is a weighted sample.
 */
function weightedOrder (addresses: EncodedAddresses, count: number, random: Random): number[] {
  const order = addresses.raws.map((_, index) => index)
  if (addresses.isUniform) {
    for (let index = 0; index < count; index++) {
      const pick = index + Math.floor(random.next() * (order.length - index))
      const chosen = order[pick] as number
      order[pick] = order[index] as number
      order[index] = chosen
    }
    return order.slice(0, count)
  }
  const keys = addresses.weights.map((weight) => Math.pow(random.next(), 1 / weight))
  return order.sort((a, b) => (keys[b] as number) - (keys[a] as number)).slice(0, count)
}

/**
 * An A or AAAA answer assembled directly (RFC 1035 §4.1): `prefix` (a header
 * and the question), then as many addresses as fit `limit` in a weighted
 * random order (a prefix of it is a weighted sample), each owned by a pointer
 * to the question's name, then an OPT when the query had one. Sizes are
 * counted, not measured: dns2 encodes bit by bit (~50 µs a message).
 */
export function addressAnswer (prefix: Buffer, addresses: EncodedAddresses, random: Random, family: 4 | 6, ttl: number, opt: { readonly isDnssecOk: boolean } | undefined, limit: number): Buffer {
  const hasOpt = opt !== undefined
  const recordSize = family === 4 ? 16 : 28
  const optSize = hasOpt ? 11 : 0
  const count = Math.max(1, Math.min(addresses.raws.length, Math.floor((limit - prefix.length - optSize) / recordSize)))
  const bytes = Buffer.allocUnsafe(prefix.length + count * recordSize + optSize)
  prefix.copy(bytes)
  // QR, the query's opcode (0) and RD; AA set; TC, RA, Z and RCODE clear.
  bytes[2] = 0x84 | ((prefix[2] as number) & 0x01)
  bytes[3] = 0
  bytes.writeUInt16BE(1, 4)
  bytes.writeUInt16BE(count, 6)
  bytes.writeUInt16BE(0, 8)
  bytes.writeUInt16BE(hasOpt ? 1 : 0, 10)
  let offset = prefix.length
  for (const index of weightedOrder(addresses, count, random)) {
    bytes.writeUInt16BE(0xc000 | Packet.HEADER_SIZE, offset)
    bytes.writeUInt16BE(family === 4 ? TYPE.A : TYPE.AAAA, offset + 2)
    bytes.writeUInt16BE(Packet.CLASS.IN, offset + 4)
    bytes.writeUInt32BE(ttl, offset + 6)
    bytes.writeUInt16BE(family === 4 ? 4 : 16, offset + 10)
    // Octet by octet: 4 or 16 of them, where Buffer#copy's checks cost more than the copy.
    const raw = addresses.raws[index] as Buffer
    for (let octet = 0; octet < raw.length; octet++) bytes[offset + 12 + octet] = raw[octet] as number
    offset += recordSize
  }
  if (hasOpt) {
    // Root owner, type OPT (41), our UDP size as the class, extended rcode and version 0, the
    // query's DO bit (RFC 3225 §3: copied into the response), no options.
    bytes[offset] = 0
    bytes.writeUInt16BE(TYPE.EDNS, offset + 1)
    bytes.writeUInt16BE(MAX_UDP_LIMIT, offset + 3)
    bytes.writeUInt32BE(opt?.isDnssecOk === true ? 0x8000 : 0, offset + 5)
    bytes.writeUInt16BE(0, offset + 9)
  }
  return bytes
}

function ipv6Bytes (address: string): Buffer {
  const [head = '', tail = ''] = address.split('::')
  const groups = (part: string): string[] => part === '' ? [] : part.split(':')
  const left = groups(head)
  const right = address.includes('::') ? groups(tail) : []
  const all = [...left, ...Array.from({ length: 8 - left.length - right.length }, () => '0'), ...right]
  const bytes = Buffer.alloc(16)
  all.forEach((group, index) => { bytes.writeUInt16BE(parseInt(group, 16), index * 2) })
  return bytes
}

/** One response under construction: what fits the client decides how much is said. */
