/**
 * Raw DNS queries for the DNS face's tests: exact bytes over UDP or TCP, the
 * answer decoded with dns2 (or undefined when nothing came back in time).
 */
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
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

/** Send bytes over UDP; the raw answer, or undefined after `timeoutMs`. */
export async function udpExchange (port: number, bytes: Buffer, timeoutMs = 1000, host = '127.0.0.1'): Promise<Buffer | undefined> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
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

/** Send one length-prefixed message over TCP; the raw answer, or undefined. */
export async function tcpExchange (port: number, bytes: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
  const socket = connect(port, '127.0.0.1')
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => { resolve(undefined) }, timeoutMs)
      let received = Buffer.alloc(0)
      socket.on('error', () => { resolve(undefined) })
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

export function decode (bytes: Buffer): Decoded {
  return Packet.parse(bytes)
}

/** `dig` from bind9-dnsutils: the status line's rcode, the answer lines and the TTLs seen. */
export function dig (port: number, name: string, type: string, extra: string[] = []): { status: string, answers: string[], ttls: number[], authority: string[], flags: string } {
  const result = spawnSync('dig', ['@127.0.0.1', '-p', String(port), '+norecurse', '+time=2', '+tries=1', ...extra, name, type], { encoding: 'utf8', timeout: 10_000 })
  const out = result.stdout
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? `none (${result.stderr.trim()}${out.trim()})`
  const flags = /;; flags: ([a-z ]+);/.exec(out)?.[1] ?? ''
  const section = (title: string): string[] => {
    const start = out.indexOf(`;; ${title} SECTION:`)
    if (start < 0) return []
    return out.slice(start).split('\n').slice(1).filter((line, index, lines) => lines.slice(0, index + 1).every((seen) => seen.trim() !== '')).filter((line) => line.trim() !== '')
  }
  const answers = section('ANSWER')
  return { status, answers, ttls: answers.map((line) => Number(line.split(/\s+/)[1])), authority: section('AUTHORITY'), flags }
}

export { Packet }
