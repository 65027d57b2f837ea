/**
 * Raw DNS queries for the DNS face's tests: exact bytes over UDP or TCP, the
 * answer decoded with dns2 (or undefined when nothing came back in time).
 */
import { createSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import type { TestContext } from 'node:test'
import { spawnSync } from 'node:child_process'
import { Packet } from 'dns2'

export type Decoded = InstanceType<typeof Packet>

/** A query packet: one question, with an EDNS0 OPT advertising `edns` bytes when given. */
export function queryBytes (name: string, type: number, options: { edns?: number, id?: number } = {}): Buffer {
  const packet = new Packet()
  packet.header.id = options.id ?? Math.floor(Math.random() * 65535)
  packet.header.rd = 1
  packet.questions.push(new Packet.Question(name, type, Packet.CLASS.IN))
  if (options.edns !== undefined) {
    const opt = Packet.Resource.EDNS([], { udpPayloadSize: options.edns })
    opt.name = ''
    packet.additionals.push(opt)
  }
  return packet.toBuffer() as Buffer
}

/** Send bytes over UDP (from `localAddress` when given: 127.0.0.0/8 is all loopback); the raw answer, or undefined after `timeoutMs`. */
export async function udpExchange (port: number, bytes: Buffer, timeoutMs = 1000, host = '127.0.0.1', localAddress?: string): Promise<Buffer | undefined> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  if (localAddress !== undefined) await new Promise<void>((resolve) => { socket.bind(0, localAddress, resolve) })
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => { resolve(undefined) }, timeoutMs)
      socket.once('message', (message) => {
        clearTimeout(timer)
        resolve(message)
      })
      socket.send(bytes, port, host)
    })
  } finally {
    socket.close()
  }
}

/** Send one length-prefixed message over TCP; the raw answer, or undefined (no answer in time, or the connection closed). */
export async function tcpExchange (port: number, bytes: Buffer, timeoutMs = 2000, localAddress?: string): Promise<Buffer | undefined> {
  const socket = connect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) })
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => { resolve(undefined) }, timeoutMs)
      let received = Buffer.alloc(0)
      socket.on('error', () => { resolve(undefined) })
      socket.on('close', () => { resolve(undefined) })
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk])
        if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
          clearTimeout(timer)
          resolve(received.subarray(2, 2 + received.readUInt16BE(0)))
        }
      })
      const framed = Buffer.alloc(2 + bytes.length)
      framed.writeUInt16BE(bytes.length, 0)
      bytes.copy(framed, 2)
      socket.write(framed)
    })
  } finally {
    socket.destroy()
  }
}

/**
 * A TCP connection to a DNS server held open, as a client (or an attacker)
 * holds it: framed queries or raw bytes, answers read in order, and when the
 * server closed it. Destroyed at the test's end.
 */
export class TcpDnsConnection {
  readonly openedAt: number
  /** Date.now() when the connection closed (by either side). */
  readonly closed: Promise<number>
  #isClosed = false
  #received = Buffer.alloc(0)
  #waiters: Array<() => void> = []
  readonly #socket: Socket

  private constructor (socket: Socket) {
    this.#socket = socket
    this.openedAt = Date.now()
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true
        resolve(Date.now())
        for (const wake of this.#waiters.splice(0)) wake()
      })
    })
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk])
      for (const wake of this.#waiters.splice(0)) wake()
    })
  }

  /** Connected from `localAddress` (default: the kernel's choice); undefined when the connect itself failed. */
  static async open (t: TestContext, port: number, localAddress?: string): Promise<TcpDnsConnection | undefined> {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) })
    t.after(() => { socket.destroy() })
    const isConnected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => { resolve(true) })
      socket.once('error', () => { resolve(false) })
    })
    return isConnected ? new TcpDnsConnection(socket) : undefined
  }

  get isClosed (): boolean { return this.#isClosed }

  /** One whole query, framed. */
  query (bytes: Buffer): void {
    const framed = Buffer.alloc(2 + bytes.length)
    framed.writeUInt16BE(bytes.length, 0)
    bytes.copy(framed, 2)
    this.write(framed)
  }

  /** Raw bytes (part of a frame, one byte of a length prefix…). */
  write (bytes: Buffer): void {
    if (!this.#isClosed) this.#socket.write(bytes)
  }

  /** The next whole answer, or undefined when none came within `timeoutMs` or the connection closed first. */
  async answer (timeoutMs = 2000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.#received.length >= 2 && this.#received.length >= 2 + this.#received.readUInt16BE(0)) {
        const length = this.#received.readUInt16BE(0)
        const message = this.#received.subarray(2, 2 + length)
        this.#received = this.#received.subarray(2 + length)
        return message
      }
      const left = deadline - Date.now()
      if (this.#isClosed || left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  destroy (): void { this.#socket.destroy() }
}

export function decode (bytes: Buffer): Decoded {
  return Packet.parse(bytes)
}

/** `dig` from bind9-dnsutils: the status line's rcode, the answer lines and the TTLs seen, the authority and additional lines. */
export function dig (port: number, name: string, type: string, extra: string[] = [], server = '127.0.0.1'): { status: string, answers: string[], ttls: number[], authority: string[], additional: string[], flags: string } {
  const result = spawnSync('dig', [`@${server}`, '-p', String(port), '+norecurse', '+time=2', '+tries=1', ...extra, name, type], { encoding: 'utf8', timeout: 10_000 })
  const out = result.stdout
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? `none (${result.stderr.trim()}${out.trim()})`
  const flags = /;; flags: ([a-z ]+);/.exec(out)?.[1] ?? ''
  const section = (title: string): string[] => {
    const start = out.indexOf(`;; ${title} SECTION:`)
    if (start < 0) return []
    return out.slice(start).split('\n').slice(1).filter((line, index, lines) => lines.slice(0, index + 1).every((seen) => seen.trim() !== '')).filter((line) => line.trim() !== '')
  }
  const answers = section('ANSWER')
  return { status, answers, ttls: answers.map((line) => Number(line.split(/\s+/)[1])), authority: section('AUTHORITY'), additional: section('ADDITIONAL'), flags }
}

export { Packet }
