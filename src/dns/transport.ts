import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, type Socket as TcpSocket } from 'node:net'
import { randomInt } from 'node:crypto'
import { Packet } from 'dns2'
import { DnsError, ErrorCode } from '../errors.js'
import type { Address } from '../util/address.js'
import { systemClock, type Clock } from '../util/clock.js'
import type {
  AddressRecord, DnsMessage, DnsObserver, Question, QueryOutcome, RejectionReason, SrvRecord, Transport
} from './types.js'

export type QueryOptions = {
  readonly timeoutMs: number
  /** EDNS0 UDP payload size advertised in the OPT record. */
  readonly ednsPayload: number
}

const TYPE_CODE = { SRV: Packet.TYPE.SRV, A: Packet.TYPE.A, AAAA: Packet.TYPE.AAAA } as const
const CLASS_IN = Packet.CLASS.IN
const HEADER_BYTES = 12
/** RFC 1035 §4.2.1: the UDP limit when the answer carries no OPT record. */
const PLAIN_UDP_LIMIT = 512
/** Consul's `udp_answer_limit`: without EDNS0 it cuts answers to 3, silently. */
const CONSUL_PLAIN_UDP_ANSWER_LIMIT = 3

type DecodedPacket = InstanceType<typeof Packet>
type Verdict = { readonly packet: DecodedPacket } | { readonly rejected: RejectionReason, readonly detail: string }

/**
 * Check that a datagram or TCP message is the answer to our query. Pure, so
 * every way an answer can lie is tested without a network. The source
 * address and port are checked by the socket: UDP sockets are connected to
 * the nameserver, and the kernel drops datagrams from anyone else.
 */
export function checkAnswer (bytes: Buffer, query: { readonly id: number, readonly question: Question }): Verdict {
  let packet: DecodedPacket
  try {
    packet = Packet.parse(bytes)
  } catch (error) {
    return { rejected: 'malformed', detail: (error as Error).message }
  }
  const header = packet.header
  if (header.qr !== 1) return { rejected: 'not-a-response', detail: 'QR bit is 0' }
  if (header.id !== query.id) return { rejected: 'id-mismatch', detail: `id ${header.id}, expected ${query.id}` }
  if (header.opcode !== 0) return { rejected: 'bad-opcode', detail: `opcode ${header.opcode}` }
  const asked = packet.questions[0]
  if (packet.questions.length !== 1 || asked === undefined ||
      normalizeName(asked.name) !== normalizeName(query.question.name) ||
      asked.type !== TYPE_CODE[query.question.type] || asked.class !== CLASS_IN) {
    const seen = asked === undefined ? 'none' : `${String(asked.name)} type ${String(asked.type)} class ${String(asked.class)}`
    return { rejected: 'question-mismatch', detail: `question ${seen}, expected ${query.question.name} ${query.question.type} IN` }
  }
  if (packet.errors.length > 0) {
    return { rejected: 'truncated-packet', detail: packet.errors.map((error) => error.message).join('; ') }
  }
  return { packet }
}

/** DNS names compare case-insensitively and without the root dot (RFC 4343). */
function normalizeName (name: unknown): string {
  return String(name).toLowerCase().replace(/\.$/, '')
}

/**
 * Consul truncates silently (no TC bit): answers are cut until the message
 * fits the client's size. When the space left could not have held two more
 * answers, records may have been dropped, and the query is asked again over
 * TCP. Without an OPT in the answer, Consul keeps at most 3 answers.
 */
export function mayBeSilentlyTruncated (sizeBytes: number, packet: DecodedPacket, advertisedPayload: number): boolean {
  const answerCount = packet.answers.length
  if (answerCount === 0) return false
  const hasOpt = packet.additionals.some((record) => record.type === Packet.TYPE.EDNS)
  if (!hasOpt && answerCount >= CONSUL_PLAIN_UDP_ANSWER_LIMIT) return true
  const limit = hasOpt ? Math.max(advertisedPayload, PLAIN_UDP_LIMIT) : PLAIN_UDP_LIMIT
  const bytesPerAnswer = (sizeBytes - HEADER_BYTES) / answerCount
  return limit - sizeBytes < 2 * bytesPerAnswer
}

/**
 * One query to one nameserver: UDP with an EDNS0 OPT record, then TCP when
 * the answer is cut (TC bit, silent truncation, or a datagram that does not
 * decode whole). dns2 is the codec only: its clients send no bare OPT, check
 * neither QR nor the question, and run TCP without a deadline.
 */
export class DnsTransport {
  readonly #observer: DnsObserver
  readonly #clock: Clock

  /** `clock` times the per-query deadlines: network time, so the system clock unless a test says otherwise. */
  constructor (observer: DnsObserver, clock: Clock = systemClock) {
    this.#observer = observer
    this.#clock = clock
  }

  async query (nameserver: Address, question: Question, options: QueryOptions): Promise<DnsMessage> {
    const udp = await this.#queryUdp(nameserver, question, options)
    if ('message' in udp) return udp.message
    return await this.#queryTcp(nameserver, question, options, udp.tcpReason)
  }

  #queryUdp (nameserver: Address, question: Question, options: QueryOptions): Promise<{ message: DnsMessage } | { tcpReason: NonNullable<DnsMessage['tcpReason']> }> {
    const id = randomInt(0x10000)
    const bytes = encodeQuery(id, question, options.ednsPayload)
    const socket: UdpSocket = createSocket(nameserver.family === 6 ? 'udp6' : 'udp4')
    return new Promise((resolve, reject) => {
      let lastRejection = ''
      let isSettled = false
      const finish = (outcome: QueryOutcome, settle: () => void): void => {
        if (isSettled) return
        isSettled = true
        timer.cancel()
        socket.removeAllListeners('message')
        socket.on('error', () => {}) // late ICMP errors after close are of no interest
        socket.close()
        this.#observer.queried({ nameserver: nameserver.label, transport: 'udp', outcome })
        settle()
      }
      const timer = this.#clock.setTimeout(() => {
        const detail = lastRejection === '' ? '' : ` (last answer rejected: ${lastRejection})`
        finish('timeout', () => reject(new DnsError(ErrorCode.DNS_TIMEOUT,
          `no answer from ${nameserver.label} over UDP within ${options.timeoutMs}ms${detail}`, { nameserver: nameserver.label })))
      }, options.timeoutMs)
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // A connected UDP socket sees ICMP port-unreachable as ECONNREFUSED: fail over now, not at the timeout.
        finish('unreachable', () => reject(new DnsError(ErrorCode.DNS_UNREACHABLE, `nameserver ${nameserver.label} unreachable over UDP: ${error.message}`, { nameserver: nameserver.label }, { cause: error })))
      })
      socket.on('message', (datagram: Buffer) => {
        // RFC 6891: never more than the payload size we advertised. Counted, then asked over TCP.
        if (datagram.length > Math.max(options.ednsPayload, PLAIN_UDP_LIMIT)) {
          this.#observer.answerRejected({ nameserver: nameserver.label, transport: 'udp', reason: 'oversized', detail: `${datagram.length} bytes, ${options.ednsPayload} advertised` })
          finish('rejected', () => resolve({ tcpReason: 'udp-answer-malformed' }))
          return
        }
        const verdict = checkAnswer(datagram, { id, question })
        if ('rejected' in verdict) {
          this.#observer.answerRejected({ nameserver: nameserver.label, transport: 'udp', reason: verdict.rejected, detail: verdict.detail })
          lastRejection = `${verdict.rejected}: ${verdict.detail}`
          // A matching answer that does not decode whole was cut in transit: ask over TCP.
          // Anything else may be a forgery racing the real answer: keep waiting.
          if (verdict.rejected === 'truncated-packet') finish('rejected', () => resolve({ tcpReason: 'udp-answer-malformed' }))
          return
        }
        const packet = verdict.packet
        if (packet.header.tc === 1) return finish(rcodeOutcome(packet.header.rcode), () => resolve({ tcpReason: 'tc-bit' }))
        if (mayBeSilentlyTruncated(datagram.length, packet, options.ednsPayload)) {
          return finish(rcodeOutcome(packet.header.rcode), () => resolve({ tcpReason: 'near-size-limit' }))
        }
        finish(rcodeOutcome(packet.header.rcode), () => resolve({ message: toMessage(packet, nameserver.label, 'udp', undefined) }))
      })
      socket.connect(nameserver.port, nameserver.host, () => {
        socket.send(bytes, (error) => {
          if (error !== null && error !== undefined) socket.emit('error', error)
        })
      })
    })
  }

  #queryTcp (nameserver: Address, question: Question, options: QueryOptions, tcpReason: DnsMessage['tcpReason']): Promise<DnsMessage> {
    const id = randomInt(0x10000)
    const query = encodeQuery(id, question, options.ednsPayload)
    const prefix = Buffer.alloc(2)
    prefix.writeUInt16BE(query.length)
    return new Promise((resolve, reject) => {
      const socket: TcpSocket = connect({ host: nameserver.host, port: nameserver.port, family: nameserver.family === 0 ? undefined : nameserver.family })
      let isSettled = false
      const finish = (outcome: QueryOutcome, settle: () => void): void => {
        if (isSettled) return
        isSettled = true
        timer.cancel()
        socket.destroy()
        this.#observer.queried({ nameserver: nameserver.label, transport: 'tcp', outcome })
        settle()
      }
      const fail = (outcome: QueryOutcome, code: typeof ErrorCode[keyof typeof ErrorCode], message: string, cause?: unknown): void =>
        finish(outcome, () => reject(new DnsError(code, message, { nameserver: nameserver.label }, { cause })))
      // Its own deadline: dns2's TCP fallback has none and was seen hanging.
      const timer = this.#clock.setTimeout(() => fail('timeout', ErrorCode.DNS_TIMEOUT, `no answer from ${nameserver.label} over TCP within ${options.timeoutMs}ms`), options.timeoutMs)
      socket.on('error', (error: NodeJS.ErrnoException) => {
        const outcome = error.code === 'ECONNREFUSED' ? 'unreachable' : 'error'
        fail(outcome, outcome === 'unreachable' ? ErrorCode.DNS_UNREACHABLE : ErrorCode.DNS_TCP_FAILED, `TCP query to ${nameserver.label} failed: ${error.message}`, error)
      })
      socket.setNoDelay(true)
      socket.write(Buffer.concat([prefix, query]))
      Packet.readStream(socket).then((bytes) => {
        const verdict = checkAnswer(bytes, { id, question })
        if ('rejected' in verdict) {
          this.#observer.answerRejected({ nameserver: nameserver.label, transport: 'tcp', reason: verdict.rejected, detail: verdict.detail })
          return fail('rejected', ErrorCode.DNS_ANSWER_REJECTED, `answer from ${nameserver.label} over TCP rejected (${verdict.rejected}): ${verdict.detail}`)
        }
        finish(rcodeOutcome(verdict.packet.header.rcode), () => resolve(toMessage(verdict.packet, nameserver.label, 'tcp', tcpReason)))
      }, (error: unknown) => {
        fail('error', ErrorCode.DNS_TCP_FAILED, `TCP answer from ${nameserver.label} unreadable: ${(error as Error).message}`, error)
      })
    })
  }
}

function encodeQuery (id: number, question: Question, ednsPayload: number): Buffer {
  const packet = new Packet()
  packet.header.id = id
  packet.header.rd = 1
  packet.questions.push(new Packet.Question(normalizeName(question.name), TYPE_CODE[question.type], CLASS_IN))
  // A bare OPT record (RFC 6891): dns2 adds one only with client-subnet. Its owner is the root.
  const opt = Packet.Resource.EDNS([], { udpPayloadSize: ednsPayload })
  opt.name = ''
  packet.additionals.push(opt)
  return packet.toBuffer()
}

function rcodeOutcome (rcode: number): QueryOutcome {
  switch (rcode) {
    case Packet.RCODE.NOERROR: return 'noerror'
    case Packet.RCODE.NXDOMAIN: return 'nxdomain'
    case Packet.RCODE.SERVFAIL: return 'servfail'
    case Packet.RCODE.REFUSED: return 'refused'
    default: return 'other-rcode'
  }
}

function toMessage (packet: DecodedPacket, nameserver: string, transport: Transport, tcpReason: DnsMessage['tcpReason']): DnsMessage {
  const srv: SrvRecord[] = []
  const addresses: AddressRecord[] = []
  let minTtl: number | undefined
  for (const record of packet.answers) {
    if (record.class !== CLASS_IN) continue
    if (record.type === Packet.TYPE.SRV) {
      srv.push({ target: normalizeName(record.target), port: Number(record.port), priority: Number(record.priority), weight: Number(record.weight), ttl: record.ttl })
    } else {
      const address = toAddressRecord(record)
      if (address === undefined) continue
      addresses.push(address)
    }
    minTtl = minTtl === undefined ? record.ttl : Math.min(minTtl, record.ttl)
  }
  const additionalAddresses = packet.additionals.map(toAddressRecord).filter((record): record is AddressRecord => record !== undefined)
  return { rcode: packet.header.rcode, srv, addresses, additionalAddresses, minTtl, nameserver, transport, tcpReason }
}

function toAddressRecord (record: DecodedPacket['answers'][number]): AddressRecord | undefined {
  if (record.class !== CLASS_IN) return undefined
  if (record.type === Packet.TYPE.A) return { name: normalizeName(record.name), address: String(record.address), family: 4, ttl: record.ttl }
  if (record.type === Packet.TYPE.AAAA) return { name: normalizeName(record.name), address: String(record.address), family: 6, ttl: record.ttl }
  return undefined
}
