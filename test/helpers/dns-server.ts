/**
 * A Consul-like DNS server for tests, built on dns2: SRV answers with TTL 0,
 * shuffled on every query, targets' addresses in the additional section,
 * `<hex>.addr.<dc>.consul` targets, NXDOMAIN when no instance is healthy,
 * and Consul's default silent truncation (no TC bit, answers cut to fit).
 * `tamper` lets a test replace what goes on the wire (spoofed IDs, garbage…).
 */
import type { Server as NetServer, Socket } from 'node:net'
import { freePort } from '../../src/demo/registry.js'
import type { TestContext } from 'node:test'
import { Packet } from 'dns2'
import dns2 from 'dns2'

type DecodedPacket = InstanceType<typeof Packet>
export type SrvInstance = { address: string, port: number, priority?: number, weight?: number, node?: string }
export type Transport = 'udp' | 'tcp'
/** What to send instead of the genuine answer: packets or raw bytes, in order; [] sends nothing. */
export type Tamper = (request: DecodedPacket, answer: DecodedPacket, transport: Transport, client: Client) => Array<DecodedPacket | Buffer> | undefined
/** Who asked: for UDP the sender's address and port (to forge a reply from elsewhere). */
export type Client = { address: string, port: number }

export type ConsulLikeOptions = {
  host?: string
  /** Record TTL in seconds (Consul's default is 0). */
  ttl?: number
  /** Targets as `<hex>.addr.dc1.consul` (instances registered with an address) instead of node names. */
  addrTargets?: boolean
  /** Leave targets' addresses out of the additional section. */
  omitAdditional?: boolean
  /** Cut UDP answers to fit, without setting TC (Consul's `enable_truncate = false`). */
  silentTruncation?: boolean
  shuffle?: boolean
  /** A fixed port (to stop and start the server at one address); default: a free one. */
  port?: number
}

const DOMAIN = 'dc1.consul'

export class ConsulLikeDnsServer {
  readonly host: string
  port = 0
  readonly options: Required<Omit<ConsulLikeOptions, 'port' | 'host'>>
  readonly queries: Array<{ name: string, type: number, transport: Transport, hadOpt: boolean }> = []
  tamper: Tamper | undefined
  /** Answer SERVFAIL to everything (Consul's internal error). */
  isFailing = false
  /** Hold every answer this long (a slow Consul: a first resolution still pending). */
  answerDelayMs = 0
  #services = new Map<string, SrvInstance[]>()
  #addresses = new Map<string, string[]>()
  #server: ReturnType<typeof dns2.createServer> | undefined
  #connections = new Set<Socket>()
  /** Answers held back by answerDelayMs: cancelled at stop, so none is sent on a closed socket. */
  #held = new Set<ReturnType<typeof setTimeout>>()

  private constructor (host: string, options: ConsulLikeOptions) {
    this.host = host
    this.options = {
      ttl: options.ttl ?? 0,
      addrTargets: options.addrTargets ?? false,
      omitAdditional: options.omitAdditional ?? false,
      silentTruncation: options.silentTruncation ?? true,
      shuffle: options.shuffle ?? true
    }
  }

  /** Start on loopback; stopped when the test ends. */
  static async start (t: TestContext | undefined, options: ConsulLikeOptions = {}): Promise<ConsulLikeDnsServer> {
    const server = new ConsulLikeDnsServer(options.host ?? '127.0.0.1', options)
    await server.listen(options.port)
    t?.after(async () => { await server.stop() })
    return server
  }

  /** `host:port` as srvgate's config writes it. */
  get address (): string { return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}` }

  get udpQueries (): number { return this.queries.filter((query) => query.transport === 'udp').length }
  get tcpQueries (): number { return this.queries.filter((query) => query.transport === 'tcp').length }

  /** Register a service's healthy instances; an empty list means "no healthy instance" (NXDOMAIN). */
  setService (name: string, instances: SrvInstance[]): void { this.#services.set(name.toLowerCase(), instances) }
  removeService (name: string): void { this.#services.delete(name.toLowerCase()) }
  /** A/AAAA records for a plain name. */
  setAddresses (name: string, addresses: string[]): void { this.#addresses.set(name.toLowerCase(), addresses) }

  async listen (port?: number): Promise<void> {
    this.port = port ?? await freePort(this.host)
    const server = dns2.createServer({
      udp: { type: this.host.includes(':') ? 'udp6' : 'udp4' },
      tcp: true,
      handle: (request, send, client) => {
        // dns2 hands UDP requests the sender's RemoteInfo and TCP requests the socket.
        const transport: Transport = 'remoteAddress' in client ? 'tcp' : 'udp'
        const from = 'remoteAddress' in client
          ? { address: String(client.remoteAddress), port: Number(client.remotePort) }
          : { address: String((client as { address: string }).address), port: Number((client as { port: number }).port) }
        this.#handle(request, send as (response: DecodedPacket | Buffer) => void, transport, from)
      }
    })
    server.on('error', () => {})
    server.on('requestError', () => {})
    await server.listen({ udp: { port: this.port, address: this.host }, tcp: { port: this.port, address: this.host } })
    const { udp, tcp } = (server as unknown as { servers: { udp: { setRecvBufferSize: (size: number) => void }, tcp: NetServer } }).servers
    udp.setRecvBufferSize(8 * 1024 * 1024)
    tcp.on('connection', (socket: Socket) => {
      this.#connections.add(socket)
      socket.on('close', () => this.#connections.delete(socket))
    })
    this.#server = server
  }

  /** Send bytes as they are from the server's UDP port, past dns2's size handling (oversized answers). */
  sendRawUdp (bytes: Buffer, client: Client): void {
    const udp = (this.#server as unknown as { servers: { udp: { send: (bytes: Buffer, port: number, address: string) => void } } } | undefined)?.servers.udp
    udp?.send(bytes, client.port, client.address)
  }

  /** DNS down for `ms`, then back on the same port (the resolvers under test keep their nameserver address). */
  async outage (ms: number): Promise<void> {
    const port = this.port
    await this.stop()
    await new Promise((resolve) => setTimeout(resolve, ms))
    await this.listen(port)
  }

  async stop (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    for (const timer of this.#held) clearTimeout(timer)
    this.#held.clear()
    const closing = server.close()
    // dns2 keeps a connection open while a query on it is unanswered (a test that holds answers back).
    for (const socket of this.#connections) socket.destroy()
    await closing
  }

  #handle (request: DecodedPacket, send: (response: DecodedPacket | Buffer) => void, transport: Transport, client: Client): void {
    const question = request.questions[0]
    const hadOpt = request.additionals.some((record) => record.type === Packet.TYPE.EDNS)
    if (question === undefined) return
    this.queries.push({ name: String(question.name).toLowerCase(), type: question.type, transport, hadOpt })
    const answer = this.#answer(request, question)
    if (transport === 'udp' && this.options.silentTruncation) silentlyTruncate(request, answer, hadOpt)
    const replacement = this.tamper?.(request, answer, transport, client)
    const messages = replacement ?? [answer]
    // dns2's UDP send is a promise: a client gone (or a server stopping) must not become an unhandled rejection.
    const reply = (): void => { for (const message of messages) void Promise.resolve(send(message)).catch(() => {}) }
    if (this.answerDelayMs <= 0) return reply()
    const timer = setTimeout(() => { this.#held.delete(timer); reply() }, this.answerDelayMs)
    this.#held.add(timer)
  }

  #answer (request: DecodedPacket, question: DecodedPacket['questions'][number]): DecodedPacket {
    const response = Packet.createResponseFromRequest(request)
    response.header.aa = 1
    if (request.additionals.some((record) => record.type === Packet.TYPE.EDNS)) {
      const opt = Packet.Resource.EDNS([], { udpPayloadSize: 4096 })
      opt.name = ''
      response.additionals.push(opt)
    }
    if (this.isFailing) {
      response.header.rcode = Packet.RCODE.SERVFAIL
      return response
    }
    const name = String(question.name).toLowerCase().replace(/\.$/, '')
    const ttl = this.options.ttl
    const instances = this.#services.get(name)
    const nodes = this.#nodeAddresses()
    const addresses = this.#addresses.get(name) ?? nodes.get(name)
    if ((instances === undefined || instances.length === 0) && addresses === undefined) {
      response.header.rcode = Packet.RCODE.NXDOMAIN
      response.authorities.push(soa())
      return response
    }
    if (question.type === Packet.TYPE.SRV && instances !== undefined) {
      const ordered = this.options.shuffle ? shuffle(instances) : instances
      for (const instance of ordered) {
        const target = this.#targetOf(instance)
        response.answers.push({ name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl, priority: instance.priority ?? 1, weight: instance.weight ?? 1, port: instance.port, target } as never)
        if (!this.options.omitAdditional) response.additionals.push(addressRecord(target, instance.address, ttl))
      }
      return response
    }
    const wanted = question.type === Packet.TYPE.AAAA ? 6 : 4
    const matching = (addresses ?? []).filter((address) => (address.includes(':') ? 6 : 4) === wanted)
    for (const address of matching) response.answers.push(addressRecord(name, address, ttl))
    if (matching.length === 0) response.authorities.push(soa())
    return response
  }

  #targetOf (instance: SrvInstance): string {
    if (this.options.addrTargets) return `${encodeAddr(instance.address)}.addr.${DOMAIN}`
    return `${instance.node ?? `node-${instance.address.replaceAll(/[.:]/g, '-')}-${instance.port}`}.node.${DOMAIN}`
  }

  /** Node names, so targets left out of the additional section still resolve (through A/AAAA queries). */
  #nodeAddresses (): Map<string, string[]> {
    const nodes = new Map<string, string[]>()
    for (const instances of this.#services.values()) {
      for (const instance of instances) nodes.set(this.#targetOf(instance), [instance.address])
    }
    return nodes
  }
}

function addressRecord (name: string, address: string, ttl: number): DecodedPacket['answers'][number] {
  const isV6 = address.includes(':')
  return { name, type: isV6 ? Packet.TYPE.AAAA : Packet.TYPE.A, class: Packet.CLASS.IN, ttl, address } as never
}

function soa (): DecodedPacket['answers'][number] {
  return { name: 'consul', type: Packet.TYPE.SOA, class: Packet.CLASS.IN, ttl: 0, primary: 'ns.consul', admin: 'hostmaster.consul', serial: 1, refresh: 3600, retry: 600, expiration: 86400, minimum: 0 } as never
}

/** Consul's trimUDPResponse: cut answers (and their additionals) until the message fits; TC stays 0. */
function silentlyTruncate (request: DecodedPacket, response: DecodedPacket, hadOpt: boolean): void {
  const opt = request.additionals.find((record) => record.type === Packet.TYPE.EDNS)
  const maxSize = hadOpt && opt !== undefined ? Math.max(512, opt.class) : 512
  if (!hadOpt && response.answers.length > 3) response.answers = response.answers.slice(0, 3)
  const keepAdditionalsFor = (answers: DecodedPacket['answers']): void => {
    const targets = new Set(answers.map((record) => String((record as { target?: string }).target ?? '')))
    response.additionals = response.additionals.filter((record) => record.type === Packet.TYPE.EDNS || targets.has(String(record.name)) || record.type !== Packet.TYPE.A && record.type !== Packet.TYPE.AAAA)
  }
  keepAdditionalsFor(response.answers)
  if (response.toBuffer().length <= maxSize) return
  const all = response.answers
  const extras = response.additionals
  let low = 0
  let high = all.length
  while (low < high) {
    const middle = Math.ceil((low + high) / 2)
    response.answers = all.slice(0, middle)
    response.additionals = extras
    keepAdditionalsFor(response.answers)
    if (response.toBuffer().length <= maxSize) low = middle
    else high = middle - 1
  }
  response.answers = all.slice(0, low)
  response.additionals = extras
  keepAdditionalsFor(response.answers)
}

export function encodeAddr (address: string): string {
  if (!address.includes(':')) return address.split('.').map((part) => Number(part).toString(16).padStart(2, '0')).join('')
  const [head = '', tail = ''] = address.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === '' ? [] : tail.split(':')
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  return groups.map((group) => group.padStart(4, '0')).join('')
}

function shuffle<T> (items: readonly T[]): T[] {
  const copy = [...items]
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1))
    const swap = copy[index] as T
    copy[index] = copy[other] as T
    copy[other] = swap
  }
  return copy
}

/** The product's own free-port probe (src/demo/registry.ts), shared by the tests. */
export { freePort } from '../../src/demo/registry.js'
