import { isIP } from 'node:net'
import { Packet } from 'dns2'
import type { Random } from '../util/random.js'
import { badVersion, echoedQuestion, ednsVersion, errorAnswer, headerOnly } from './error-answers.js'
import { isWholeMessage } from './message-extent.js'
import { questionLabels, readPlainQuery, type PlainQuery } from './plain-query.js'
import { addressAnswer, encodedAddresses, MAX_UDP_LIMIT, type EncodedAddresses } from './address-answer.js'

/**
 * The DNS face's answers (bytes in, bytes out, no I/O): authoritative for one
 * zone, never recursive, from a view the caller builds of srvgate's own
 * health-filtered instance sets. dns2 is the codec (name compression, pointer
 * loops refused); what to answer, and how much fits, is decided here.
 */

/** One usable instance, as the DNS face tells it. */
export type FaceInstance = { readonly address: string, readonly port: number, readonly priority: number, readonly weight: number }

/** What a configured name answers now. */
export type FaceTarget = (
  /** `instances`: every usable one, lowest priority group first; `preferred`: the group the gateway picks from now. */
  | { readonly kind: 'instances', readonly instances: readonly FaceInstance[], readonly preferred: readonly FaceInstance[], readonly isStale: boolean }
  | { readonly kind: 'gateway', readonly instances: readonly FaceInstance[] }
) & {
  /** Unchanged (by identity) while the answer cannot change: answers built for it may be reused. */
  readonly version: unknown
}

export type FaceView = {
  readonly zone: string
  /** The face's own name (the zone's NS and the SOA's MNAME) and the addresses it answers with: the face's own. */
  readonly nameserver: { readonly name: string, readonly addresses: readonly string[] }
  readonly ttlSeconds: number
  /** The target of a configured label; undefined: not configured (NXDOMAIN). */
  readonly target: (label: string) => FaceTarget | undefined
  /** An address some configured name answers now (for the SRV targets' own names). */
  readonly isKnownAddress: (address: string) => boolean
}

export type FaceTransport = 'udp' | 'tcp'

/** What happened to one query, for metrics and tests. */
export type FaceOutcome = {
  /** The answer; undefined: dropped (not a query, or too short to answer). */
  readonly bytes: Buffer | undefined
  readonly rcode: 'noerror' | 'nxdomain' | 'formerr' | 'notimp' | 'refused' | 'badvers' | 'dropped'
  /** The configured label asked for, `(zone)`, `(nameserver)`, `(address)`, `(empty)`, `(unknown)`, `(outside)` or `(none)`: bounded for metric labels. */
  readonly name: string
  readonly type: string
  readonly isStale: boolean
  readonly isTruncated: boolean
}

/** RFC 8767 §4: the TTL of an answer from stale data. */
export const STALE_TTL_SECONDS = 30
const PLAIN_UDP_LIMIT = 512
const TYPE = Packet.TYPE
const TYPE_NAMES = new Map<number, string>([[TYPE.A, 'A'], [TYPE.AAAA, 'AAAA'], [TYPE.SRV, 'SRV'], [TYPE.SOA, 'SOA'], [TYPE.NS, 'NS'], [TYPE.TXT, 'TXT'], [TYPE.MX, 'MX'], [TYPE.ANY, 'ANY'], [64, 'SVCB'], [65, 'HTTPS']])
type DecodedPacket = InstanceType<typeof Packet>
type Record = InstanceType<typeof Packet.Resource>

/** The name of an address (for SRV targets): `10-0-0-7.addr.ZONE`, `fd00--7.addr.ZONE`. */
export function addressName (address: string, zone: string): string {
  return `${address.replaceAll(/[.:]/g, '-')}.addr.${zone}`
}

function addressOfLabel (label: string): string | undefined {
  const v4 = label.replaceAll('-', '.')
  if (isIP(v4) === 4) return v4
  const v6 = label.replaceAll('-', ':')
  return isIP(v6) === 6 ? v6 : undefined
}

/**
 * Answers already encoded, per question and client size, for as long as
 * their target's version stands: dns2 encodes bit by bit (~50 µs a message),
 * so an SRV answer is encoded once per change, not once per query. The DNS
 * face owns one; A/AAAA answers are never cached (a new draw each query) but
 * assembled directly (fixed 16- or 28-octet records) from addresses encoded
 * once per instance list.
 */
export class AnswerCache {
  readonly #entries = new Map<string, { readonly version: unknown, readonly ttl: number, readonly outcome: FaceOutcome }>()
  /** A/AAAA addresses encoded once per instance list (a backend keeps its lists by identity until they change). */
  readonly #addresses = new WeakMap<readonly FaceInstance[], { 4?: EncodedAddresses, 6?: EncodedAddresses }>()
  static readonly MAX_ENTRIES = 1024

  addresses (instances: readonly FaceInstance[], family: 4 | 6): EncodedAddresses {
    let byFamily = this.#addresses.get(instances)
    if (byFamily === undefined) {
      byFamily = {}
      this.#addresses.set(instances, byFamily)
    }
    return (byFamily[family] ??= encodedAddresses(instances, family))
  }

  get (key: string, version: unknown, ttl: number): FaceOutcome | undefined {
    const entry = this.#entries.get(key)
    return entry !== undefined && entry.version === version && entry.ttl === ttl ? entry.outcome : undefined
  }

  set (key: string, version: unknown, ttl: number, outcome: FaceOutcome): void {
    if (this.#entries.size >= AnswerCache.MAX_ENTRIES && !this.#entries.has(key)) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    this.#entries.set(key, { version, ttl, outcome })
  }
}

export function respond (query: Buffer, transport: FaceTransport, view: FaceView, random: Random, cache?: AnswerCache): FaceOutcome {
  const none = { name: '(none)', type: '-', isStale: false, isTruncated: false }
  // Nothing to answer to: too short to carry an ID, or itself a response (answering responses makes loops).
  if (query.length < Packet.HEADER_SIZE || (query[2] as number) >> 7 === 1) return { ...none, bytes: undefined, rcode: 'dropped' }
  // dns2 decodes what the plain reader does not take, and builds the answers it encodes.
  let decoded: DecodedPacket | undefined
  let read: ReadQuery | undefined = readPlainQuery(query)
  if (read === undefined) {
    let request: DecodedPacket
    try {
      request = Packet.parse(query)
    } catch {
      return { ...none, bytes: headerOnly(query, Packet.RCODE.FORMERR), rcode: 'formerr' }
    }
    if (request.header.opcode !== 0) return { ...none, bytes: errorAnswer(request, Packet.RCODE.NOTIMP), rcode: 'notimp' }
    const opts = request.additionals.filter((record) => record.type === TYPE.EDNS)
    if (request.errors.length > 0 || !isWholeMessage(query) || request.questions.length !== 1 || request.header.ancount > 0 || opts.length > 1) {
      return { ...none, bytes: headerOnly(query, Packet.RCODE.FORMERR), rcode: 'formerr' }
    }
    // A label holding a dot: dns2 reads it as two labels (and would echo another name). No
    // configured name has one: in the zone, no such name; outside it, not ours.
    const raw = questionLabels(query)
    if (raw !== undefined && raw.labels.some((label) => label.includes('.'))) return oddName(query, raw, view.zone)
    decoded = request
    read = queryOf(request, opts[0], plainQuestionEnd(query))
  }
  const request = (): DecodedPacket => (decoded ??= Packet.parse(query))
  const { name, opt, questionEnd } = read
  const type = TYPE_NAMES.get(read.type) ?? 'other'
  if (opt !== undefined && opt.version !== 0) return { bytes: badVersion(request(), MAX_UDP_LIMIT), rcode: 'badvers', name: '(none)', type, isStale: false, isTruncated: false }
  const limit = transport === 'tcp' ? 65535 : opt === undefined ? PLAIN_UDP_LIMIT : Math.min(Math.max(PLAIN_UDP_LIMIT, opt.udpPayloadSize), MAX_UDP_LIMIT)
  const zone = view.zone
  const refused = (label: string): FaceOutcome => ({ bytes: errorAnswer(request(), Packet.RCODE.REFUSED), rcode: 'refused', name: label, type, isStale: false, isTruncated: false })
  // Authoritative for the zone alone, and for class IN (ANY accepted as IN).
  if (read.class !== Packet.CLASS.IN && read.class !== Packet.CLASS.ANY) return refused('(none)')
  if (!isInZone(name, zone)) return refused('(outside)')
  // Zone transfers (AXFR 252, IXFR 251) are not offered: the zone is made from live state, per query.
  if (read.type === 252 || read.type === 251) return refused('(zone)')
  // Built only for answers dns2 encodes: the A/AAAA path below writes its bytes itself.
  const answer = (): Answer => {
    const response = Packet.createResponseFromRequest(request())
    response.header.aa = 1
    if (opt !== undefined) response.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: MAX_UDP_LIMIT, doFlag: opt.isDnssecOk }))
    return new Answer(response, read.type, name, view, limit)
  }
  // The name below the zone as its first label and the rest (undefined: one label), no array per query.
  const relative = name === zone ? '' : name.slice(0, -(zone.length + 1))
  if (relative === '') return answer().apex()
  if (name === view.nameserver.name) return answer().nameserver()
  const dot = relative.indexOf('.')
  const first = dot === -1 ? relative : relative.slice(0, dot)
  const rest = dot === -1 ? undefined : relative.slice(dot + 1)
  if (rest === 'addr') return answer().address(addressOfLabel(first))
  const srvLabel = rest === '_tcp' && first.startsWith('_') ? first.slice(1) : undefined
  const label = srvLabel ?? (rest === undefined ? first : undefined)
  const target = label === undefined ? undefined : view.target(label)
  // The empty non-terminals above _service._tcp and N-N-N-N.addr names exist (RFC 8020): NODATA, not NXDOMAIN.
  if ((label === undefined || target === undefined) && rest === undefined && (first === '_tcp' || first === 'addr')) return answer().nodata()
  if (label === undefined || target === undefined) return answer().nxdomain()
  const isSrvName = srvLabel !== undefined
  const isStale = target.kind === 'instances' && target.isStale
  const ttl = isStale ? STALE_TTL_SECONDS : view.ttlSeconds
  const instances = target.kind === 'instances' ? target.preferred : target.instances
  // ANY at a name: its addresses, IPv4 if it has some (RFC 8482: a subset of what the name holds).
  const family = read.type === TYPE.A ? 4 : read.type === TYPE.AAAA ? 6 : read.type === TYPE.ANY ? (instances.some((instance) => isIP(instance.address) === 4) ? 4 : 6) : undefined
  if (family !== undefined && !isSrvName) {
    const addresses = cache?.addresses(instances, family) ?? encodedAddresses(instances, family)
    if (addresses.raws.length > 0) {
      // The query's own header and question; a question written with a pointer is written out plainly first.
      const prefix = questionEnd !== undefined ? query.subarray(0, questionEnd) : encode(Packet.createResponseFromRequest(request()))
      const bytes = addressAnswer(prefix, addresses, random, family, ttl, opt, limit)
      return { bytes, rcode: 'noerror', name: label, type, isStale, isTruncated: false }
    }
  }
  const key = questionEnd === undefined ? undefined : `${query.toString('latin1', 12, questionEnd)}|${limit}|${opt === undefined ? 0 : opt.isDnssecOk ? 2 : 1}`
  const cached = key === undefined ? undefined : cache?.get(key, target.version, ttl)
  if (cached !== undefined) return { ...cached, bytes: withIdOf(query, cached.bytes as Buffer) }
  const outcome = answer().forTarget(label, target, isSrvName)
  if (key !== undefined) cache?.set(key, target.version, ttl, outcome)
  return outcome
}

/** `name` is the zone or below it (no string made: asked per query). */
function isInZone (name: string, zone: string): boolean {
  if (name.length === zone.length) return name === zone
  return name.length > zone.length && name.charCodeAt(name.length - zone.length - 1) === 0x2e && name.endsWith(zone)
}

/** A question whose labels hold a dot, answered with its own bytes: NXDOMAIN in the zone, REFUSED outside it. */
function oddName (query: Buffer, raw: { readonly labels: readonly string[], readonly questionEnd: number }, zone: string): FaceOutcome {
  const zoneLabels = zone === '' ? [] : zone.split('.')
  const inZone = raw.labels.length > zoneLabels.length && zoneLabels.every((label, index) => raw.labels[raw.labels.length - zoneLabels.length + index] === label)
  const rcode = inZone ? Packet.RCODE.NXDOMAIN : Packet.RCODE.REFUSED
  return { bytes: echoedQuestion(query, raw.questionEnd, rcode, inZone), rcode: inZone ? 'nxdomain' : 'refused', name: inZone ? '(unknown)' : '(outside)', type: TYPE_NAMES.get(query.readUInt16BE(raw.questionEnd - 4)) ?? 'other', isStale: false, isTruncated: false }
}

/** What respond reads of a query: the plain reader's, or dns2's (whose question may not end plainly). */
type ReadQuery = Omit<PlainQuery, 'questionEnd'> & { readonly questionEnd: number | undefined }

/** What respond reads of a query dns2 decoded. */
function queryOf (request: DecodedPacket, opt: Record | undefined, questionEnd: number | undefined): ReadQuery {
  const question = request.questions[0] as DecodedPacket['questions'][number]
  return {
    name: String(question.name).toLowerCase().replace(/\.$/, ''),
    type: question.type,
    class: question.class,
    questionEnd,
    opt: opt === undefined ? undefined : { udpPayloadSize: opt.class, version: ednsVersion(opt), isDnssecOk: opt.doFlag === true }
  }
}

/** Where the question ends, when its name is plain labels (no compression pointer): what a cached answer is keyed by. */
function plainQuestionEnd (query: Buffer): number | undefined {
  let offset = Packet.HEADER_SIZE
  while (offset < query.length) {
    const length = query[offset] as number
    if (length === 0) return offset + 5 <= query.length ? offset + 5 : undefined
    if (length >= 0x40) return undefined
    offset += length + 1
  }
  return undefined
}

/** A cached answer for this query: its ID and RD flag, the rest as encoded. */
function withIdOf (query: Buffer, answer: Buffer): Buffer {
  const bytes = Buffer.from(answer)
  query.copy(bytes, 0, 0, 2)
  bytes[2] = ((bytes[2] as number) & 0xfe) | ((query[2] as number) & 0x01)
  return bytes
}

class Answer {
  readonly #response: DecodedPacket
  readonly #type: number
  readonly #name: string
  readonly #view: FaceView
  readonly #limit: number

  constructor (response: DecodedPacket, type: number, name: string, view: FaceView, limit: number) {
    this.#response = response
    this.#type = type
    this.#name = name
    this.#view = view
    this.#limit = limit
  }

  /** The zone itself: its SOA, and its NS (the face's own name) with that name's addresses beside it. */
  apex (): FaceOutcome {
    const type = this.#type
    if (type === TYPE.SOA || type === TYPE.ANY) this.#response.answers.push(this.#soa())
    if (type === TYPE.NS || type === TYPE.ANY) {
      const { name, addresses } = this.#view.nameserver
      this.#response.answers.push(new Packet.Resource({ name: this.#view.zone, type: TYPE.NS, class: Packet.CLASS.IN, ttl: this.#view.ttlSeconds, ns: name }))
      // RFC 1034 §4.3.2: the NS target's addresses go in the additional section, before the OPT as #srv places them.
      this.#response.additionals.unshift(...addresses.map((address) => addressRecord(name, address, this.#view.ttlSeconds)))
    }
    if (this.#response.answers.length === 0) this.#response.authorities.push(this.#soa())
    return this.#done('(zone)', false)
  }

  /** The face's own name: the addresses it listens on (NODATA with an SOA for a family it has none of). */
  nameserver (): FaceOutcome {
    const type = this.#type
    for (const address of this.#view.nameserver.addresses) {
      const recordType = address.includes(':') ? TYPE.AAAA : TYPE.A
      if (type === recordType || type === TYPE.ANY) this.#response.answers.push(addressRecord(this.#name, address, this.#view.ttlSeconds))
    }
    if (this.#response.answers.length === 0) this.#response.authorities.push(this.#soa())
    return this.#done('(nameserver)', false)
  }

  /** An SRV target's own name: its address, while some name answers with it. */
  address (address: string | undefined): FaceOutcome {
    if (address === undefined || !this.#view.isKnownAddress(address)) return this.nxdomain()
    const wanted = address.includes(':') ? TYPE.AAAA : TYPE.A
    if (this.#type === wanted || this.#type === TYPE.ANY) this.#response.answers.push(addressRecord(this.#name, address, this.#view.ttlSeconds))
    else this.#response.authorities.push(this.#soa())
    return this.#done('(address)', false)
  }

  /** A name that exists with nothing of its own (an empty non-terminal): NOERROR, the SOA for negative caching. */
  nodata (): FaceOutcome {
    this.#response.authorities.push(this.#soa())
    return this.#done('(empty)', false)
  }

  nxdomain (): FaceOutcome {
    this.#response.header.rcode = Packet.RCODE.NXDOMAIN
    this.#response.authorities.push(this.#soa())
    return this.#done('(unknown)', false, 'nxdomain')
  }

  forTarget (label: string, target: FaceTarget, isSrvName: boolean): FaceOutcome {
    const isStale = target.kind === 'instances' && target.isStale
    const ttl = isStale ? STALE_TTL_SECONDS : this.#view.ttlSeconds
    const type = this.#type
    if ((type === TYPE.SRV || (type === TYPE.ANY && isSrvName)) && target.instances.length > 0) return this.#srv(label, target.instances, ttl, isStale)
    // A known name with nothing to say for this type (or no usable instance): NOERROR, no answers,
    // an SOA for negative caching; never NXDOMAIN for a name that will come back.
    this.#response.authorities.push(this.#soa())
    return this.#done(label, isStale)
  }

  /** Every usable instance with its priority and weight, and the targets' addresses; cut with TC when it does not fit. */
  #srv (label: string, instances: readonly FaceInstance[], ttl: number, isStale: boolean): FaceOutcome {
    const zone = this.#view.zone
    const srvName = `_${label}._tcp.${zone}`
    const owner = this.#name === `${label}.${zone}` ? this.#name : srvName
    const answers = instances.map((instance) => srvRecord(owner, ttl, instance, addressName(instance.address, zone)))
    const targets = [...new Set(instances.map((instance) => instance.address))]
    const opt = this.#response.additionals
    // At most (names uncompressed): each SRV 2 + 10 + 6 + its target's name; each address 2 + 10 + 4 or 16.
    const srvSizes = answers.map((record) => 18 + wireLength(record.target ?? ''))
    const additionalsSize = targets.reduce((sum, address) => sum + wireLength(addressName(address, zone)) + 10 + (address.includes(':') ? 16 : 4), 0)
    const base = this.#baseSize()
    this.#response.answers = answers
    this.#response.additionals = [...targets.map((address) => addressRecord(addressName(address, zone), address, ttl)), ...opt]
    if (base + srvSizes.reduce((sum, size) => sum + size, 0) + additionalsSize <= this.#limit) return this.#done(label, isStale)
    const whole = this.#done(label, isStale)
    if ((whole.bytes as Buffer).length <= this.#limit) return whole
    // RFC 2181 §9: what does not fit is cut and TC set; the client asks again over TCP.
    this.#response.additionals = opt
    this.#response.header.tc = 1
    let count = 0
    for (let size = base; count < srvSizes.length && size + (srvSizes[count] as number) <= this.#limit; count++) size += srvSizes[count] as number
    this.#response.answers = answers.slice(0, count)
    return this.#done(label, isStale, 'noerror', true)
  }

  /** Header, question and OPT: what every answer carries. */
  #baseSize (): number {
    const hasOpt = this.#response.additionals.length > 0
    return 12 + wireLength(this.#name) + 4 + (hasOpt ? 11 : 0)
  }

  #soa (): Record {
    const zone = this.#view.zone
    const ttl = this.#view.ttlSeconds
    return new Packet.Resource({ name: zone, type: TYPE.SOA, class: Packet.CLASS.IN, ttl, primary: this.#view.nameserver.name, admin: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expiration: 86400, minimum: ttl })
  }

  #done (name: string, isStale: boolean, rcode: FaceOutcome['rcode'] = 'noerror', isTruncated = false): FaceOutcome {
    return { bytes: encode(this.#response), rcode, name, type: TYPE_NAMES.get(this.#type) ?? 'other', isStale, isTruncated }
  }
}

/** Octets of a name on the wire, uncompressed: a length octet per label, the labels, the root. */
function wireLength (name: string): number {
  return name === '' ? 1 : name.length + 2
}

function encode (packet: DecodedPacket): Buffer {
  return packet.toBuffer() as Buffer
}

// dns2's Resource constructor gives a record its type (and its toBuffer) from fields alone: no cast of a literal.
function addressRecord (name: string, address: string, ttl: number): Record {
  return new Packet.Resource({ name, type: address.includes(':') ? TYPE.AAAA : TYPE.A, class: Packet.CLASS.IN, ttl, address })
}

function srvRecord (name: string, ttl: number, instance: FaceInstance, target: string): Record {
  return new Packet.Resource({ name, type: TYPE.SRV, class: Packet.CLASS.IN, ttl, priority: instance.priority, weight: instance.weight, port: instance.port, target })
}

