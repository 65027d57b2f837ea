import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import type { Address } from '../util/address.js'
import type { DnsFaceConfig } from '../config/types.js'
import { AnswerCache, respond, type FaceInstance, type FaceOutcome, type FaceTransport, type FaceView } from '../dns/responder.js'
import type { Clock } from '../util/clock.js'
import type { Random } from '../util/random.js'
import { SourceRateLimit } from './rate-limit.js'

export type DnsFaceDeps = {
  /** The view of the configuration that runs now (read per query: a reload changes names at once). */
  readonly view: (gateway: FaceInstance | undefined) => FaceView | undefined
  /** The current `dns` section (its rate limit applies per query). */
  readonly config: () => DnsFaceConfig | undefined
  /** srvgate's public listener (for `gateway: true` names); an unspecified host is replaced by the face's own address. */
  readonly publicAddress: { readonly host: string, readonly port: number } | undefined
  readonly clock: Clock
  readonly random: Random
  readonly onQuery?: (outcome: FaceOutcome, transport: FaceTransport) => void
  readonly onRateLimited?: (transport: FaceTransport) => void
  readonly onError?: (error: unknown) => void
}

/** An idle TCP client is closed after this (RFC 7766 §6.2.3 suggests seconds, not minutes). */
const TCP_IDLE_MS = 10_000
const MAX_TCP_CONNECTIONS = 256
/** Bursts must not be lost in the kernel before the rate limit sees them. */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

/**
 * The DNS face's listeners: UDP and TCP on each `dns.listen` address. Every
 * query goes through the per-source rate limit, then `respond` (dns/
 * responder.ts) against the view of the running configuration. Nothing a
 * client sends can throw out of here: every failure is an answer or a drop.
 */
export class DnsFace {
  readonly #deps: DnsFaceDeps
  readonly #udp: UdpSocket[] = []
  readonly #tcp: Server[] = []
  readonly #connections = new Set<Socket>()
  readonly #limit: SourceRateLimit
  readonly #cache = new AnswerCache()
  /** The addresses bound (port 0 asked: the one given), UDP and TCP alike. */
  readonly addresses: Array<{ host: string, port: number }> = []

  constructor (deps: DnsFaceDeps) {
    this.#deps = deps
    this.#limit = new SourceRateLimit(deps.clock, () => deps.config()?.rateLimit ?? { perSecond: 1, burst: 1 })
  }

  async listen (addresses: readonly Address[]): Promise<void> {
    try {
      for (const address of addresses) {
        const port = await this.#listenUdp(address)
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
    if (!this.#limit.take(source)) {
      this.#deps.onRateLimited?.(transport)
      return undefined
    }
    try {
      const view = this.#deps.view(this.#gatewayAddress(local))
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

  #gatewayAddress (local: string): FaceInstance | undefined {
    const listener = this.#deps.publicAddress
    if (listener === undefined) return undefined
    const host = listener.host === '0.0.0.0' || listener.host === '::' ? local : listener.host
    if (host === '0.0.0.0' || host === '::' || host === '') return undefined
    return { address: host, port: listener.port, priority: 1, weight: 1 }
  }

  async #listenUdp (address: Address): Promise<number> {
    const socket = createSocket({ type: address.host.includes(':') ? 'udp6' : 'udp4', ipv6Only: address.host.includes(':') })
    this.#udp.push(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(address.port, address.host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.setRecvBufferSize(UDP_RECEIVE_BUFFER)
    socket.on('error', (error) => { this.#deps.onError?.(error) })
    socket.on('message', (query, from) => {
      const answer = this.#answer(query, 'udp', from.address, address.host)
      if (answer !== undefined) socket.send(answer, from.port, from.address, (error) => { if (error !== null) this.#deps.onError?.(error) })
    })
    return socket.address().port
  }

  async #listenTcp (address: Address): Promise<void> {
    const server = createServer((socket) => { this.#serveTcp(socket) })
    server.maxConnections = MAX_TCP_CONNECTIONS
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

  /** RFC 7766: messages with a two-octet length, several per connection, answered in order. */
  #serveTcp (socket: Socket): void {
    this.#connections.add(socket)
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy())
    socket.on('error', () => {})
    socket.on('close', () => this.#connections.delete(socket))
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0)
        if (pending.length < 2 + length) break
        const query = pending.subarray(2, 2 + length)
        pending = pending.subarray(2 + length)
        const answer = this.#answer(query, 'tcp', socket.remoteAddress ?? '', socket.localAddress ?? '')
        if (answer === undefined) continue
        const framed = Buffer.alloc(2 + answer.length)
        framed.writeUInt16BE(answer.length, 0)
        answer.copy(framed, 2)
        socket.write(framed)
      }
    })
  }
}
