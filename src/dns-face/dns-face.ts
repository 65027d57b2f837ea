import type { Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import type { Address } from '../util/address.js'
import { bindUdp } from '../util/shared-udp-port.js'
import type { Milliseconds } from '../util/duration.js'
import type { DnsFaceConfig } from '../config/types.js'
import { AnswerCache, respond, type FaceInstance, type FaceOutcome, type FaceTransport, type FaceView } from '../dns/responder.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import { SourceRateLimit, type RateVerdict } from './rate-limit.js'
import { ConnectionCaps, type Admission } from './connection-caps.js'
import { TcpSession, type TcpTimeout } from './tcp-session.js'

export type DnsFaceDeps = {
  /** The view of the configuration that runs now (read per query: a reload changes names at once); `local`: the address the query came in on. */
  readonly view: (gateway: FaceInstance | undefined, local: string) => FaceView | undefined
  /** The current `dns` section (its rate limit applies per query). */
  readonly config: () => DnsFaceConfig | undefined
  /** srvgate's public listener (for `gateway: true` names); an unspecified host is replaced by the face's own address. */
  readonly publicAddress: { readonly host: string, readonly port: number } | undefined
  readonly clock: Clock
  readonly random: Random
  readonly onQuery?: (outcome: FaceOutcome, transport: FaceTransport) => void
  readonly onRateLimited?: (transport: FaceTransport, limit: Exclude<RateVerdict, 'answer'>) => void
  /** A TCP connection closed at once: over dns.tcp.maxConnections or maxConnectionsPerSource. */
  readonly onTcpRefused?: (reason: Exclude<Admission, 'admitted'>) => void
  /** A TCP connection closed by a dns.tcp deadline. */
  readonly onTcpTimeout?: (timeout: TcpTimeout) => void
  /** TCP connections open now, after each change. */
  readonly onTcpConnections?: (open: number) => void
  readonly onError?: (error: unknown) => void
}

/** Before any configuration (never in practice: the face starts with one): the schema's defaults. */
const DEFAULT_RATE_LIMIT = { perSecond: 500, burst: 1000, globalPerSecond: 20_000 }
const DEFAULT_TCP = { messageTimeoutMs: 2000 as Milliseconds, idleTimeoutMs: 10_000 as Milliseconds, maxConnections: 256, maxConnectionsPerSource: 16 }
/** Bursts must not be lost in the kernel before the rate limit sees them. */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

/**
 * The DNS face's listeners: UDP and TCP on each `dns.listen` address. A TCP
 * connection is admitted by the connection caps and served by a TcpSession
 * (framing, deadlines). Every query goes through the rate limit, then
 * `respond` (dns/responder.ts) against the view of the running
 * configuration. Nothing a client sends can throw out of here: every failure
 * is an answer or a drop.
 */
export class DnsFace {
  readonly #deps: DnsFaceDeps
  readonly #udp: UdpSocket[] = []
  readonly #tcp: Server[] = []
  readonly #connections = new Set<Socket>()
  readonly #limit: SourceRateLimit
  readonly #tcpLimit: SourceRateLimit
  readonly #caps: ConnectionCaps
  readonly #cache = new AnswerCache()
  #gatewayOf: { readonly local: string | undefined, readonly gateway: FaceInstance | undefined } = { local: undefined, gateway: undefined }
  /** The addresses bound (port 0 asked: the one given), UDP and TCP alike. */
  readonly addresses: Array<{ host: string, port: number }> = []

  constructor (deps: DnsFaceDeps) {
    this.#deps = deps
    this.#limit = new SourceRateLimit(deps.clock, () => deps.config()?.rateLimit ?? DEFAULT_RATE_LIMIT)
    this.#tcpLimit = new SourceRateLimit(deps.clock, () => deps.config()?.rateLimit ?? DEFAULT_RATE_LIMIT, { perAddress: true })
    this.#caps = new ConnectionCaps(() => this.#tcpLimits())
  }

  /**
   * Bind UDP and TCP on each address. `reusePort` (a cluster worker): this
   * process's own UDP socket joins the others on the port (SO_REUSEPORT),
   * and TCP goes through the primary as the HTTP listeners do.
   */
  async listen (addresses: readonly Address[], options: { readonly reusePort?: boolean } = {}): Promise<void> {
    try {
      for (const address of addresses) {
        const port = await this.#listenUdp(address, options.reusePort === true)
        await this.#listenTcp({ ...address, port })
        this.addresses.push({ host: address.host, port })
      }
    } catch (error) {
      await this.close()
      throw error
    }
  }

  async close (): Promise<void> {
    for (const socket of this.#connections) socket.destroy()
    await Promise.all([
      ...this.#udp.map(async (socket) => { await new Promise<void>((resolve) => { socket.close(() => { resolve() }) }) }),
      ...this.#tcp.map(async (server) => { await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
    ])
    this.#udp.length = 0
    this.#tcp.length = 0
  }

  /** One query from `source`, answered from `local` (the address a gateway name falls back to). */
  #answer (query: Buffer, transport: FaceTransport, source: string, local: string): Buffer | undefined {
    // TCP has buckets of its own, one per address: a UDP flood with spoofed sources from a client's
    // /24 must not spend the tokens of the TCP queries that are its way back, and a TCP source,
    // which cannot be spoofed, spends only its own.
    const verdict = transport === 'udp' ? this.#limit.take(source, true) : this.#tcpLimit.take(source, false)
    if (verdict !== 'answer') {
      this.#deps.onRateLimited?.(transport, verdict)
      return undefined
    }
    try {
      const view = this.#deps.view(this.#gatewayAddress(local), local)
      if (view === undefined) return undefined
      const outcome = respond(query, transport, view, this.#deps.random, this.#cache)
      this.#deps.onQuery?.(outcome, transport)
      return outcome.bytes
    } catch (error) {
      // A bug, not the client's doing: reported, the query dropped, the face serving on.
      this.#deps.onError?.(error)
      return undefined
    }
  }

  /** srvgate's own address for `gateway: true` names, as seen from `local`; made once per local address (asked per query). */
  #gatewayAddress (local: string): FaceInstance | undefined {
    if (this.#gatewayOf.local === local) return this.#gatewayOf.gateway
    const listener = this.#deps.publicAddress
    const host = listener === undefined ? '' : listener.host === '0.0.0.0' || listener.host === '::' ? local : listener.host
    const gateway = listener === undefined || host === '0.0.0.0' || host === '::' || host === '' ? undefined : { address: host, port: listener.port, priority: 1, weight: 1 }
    this.#gatewayOf = { local, gateway }
    return gateway
  }

  async #listenUdp (address: Address, reusePort: boolean): Promise<number> {
    const socket = await bindUdp(address, reusePort)
    this.#udp.push(socket)
    socket.setRecvBufferSize(UDP_RECEIVE_BUFFER)
    socket.on('error', (error) => { this.#deps.onError?.(error) })
    // One callback for every send (dgram drops a send's error when given none).
    const sent = (error: Error | null): void => { if (error !== null) this.#deps.onError?.(error) }
    socket.on('message', (query, from) => {
      const answer = this.#answer(query, 'udp', from.address, address.host)
      if (answer !== undefined) socket.send(answer, from.port, from.address, sent)
    })
    return socket.address().port
  }

  async #listenTcp (address: Address): Promise<void> {
    const server = createServer((socket) => { this.#serveTcp(socket) })
    this.#tcp.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port: address.port, host: address.host, ipv6Only: address.host.includes(':') }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (error) => { this.#deps.onError?.(error) })
  }

  /** A new TCP connection: admitted by the caps (else closed at once), then one TcpSession. */
  #serveTcp (socket: Socket): void {
    socket.on('error', () => {})
    const source = socket.remoteAddress ?? ''
    const admission = this.#caps.admit(source)
    if (admission !== 'admitted') {
      this.#deps.onTcpRefused?.(admission)
      socket.destroy()
      return
    }
    this.#connections.add(socket)
    this.#deps.onTcpConnections?.(this.#caps.open)
    socket.on('close', () => {
      this.#connections.delete(socket)
      this.#caps.release(source)
      this.#deps.onTcpConnections?.(this.#caps.open)
    })
    const local = socket.localAddress ?? ''
    // eslint-disable-next-line no-new -- the session lives on the socket's events
    new TcpSession(socket, {
      clock: this.#deps.clock,
      limits: () => this.#tcpLimits(),
      answer: (query) => this.#answer(query, 'tcp', source, local),
      ...(this.#deps.onTcpTimeout === undefined ? {} : { onTimeout: this.#deps.onTcpTimeout })
    })
  }

  #tcpLimits (): DnsFaceConfig['tcp'] {
    return this.#deps.config()?.tcp ?? DEFAULT_TCP
  }
}
