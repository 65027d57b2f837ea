import type { Socket } from 'node:net'
import type { DnsFaceTcpConfig } from '../config/types.js'
import type { Clock, Timer } from '../util/clock.js'

/** Which deadline closed a connection. */
export type TcpTimeout = 'message' | 'idle'

export type TcpSessionDeps = {
  readonly clock: Clock
  /** dns.tcp as it is now (read at each deadline armed: a reload applies to the next one). */
  readonly limits: () => DnsFaceTcpConfig
  /** One whole query → its answer, or undefined when it gets none (dropped, rate-limited). */
  readonly answer: (query: Buffer) => Buffer | undefined
  readonly onTimeout?: (timeout: TcpTimeout) => void
}

/**
 * One DNS-over-TCP connection (RFC 7766): messages with a two-octet length,
 * several per connection, answered in order. One deadline runs at a time:
 *
 * - `message`: a message that has begun must be whole within
 *   dns.tcp.messageTimeout of its first byte, however slowly it trickles
 *   (a byte every few seconds once held every slot: a timeout reset by each
 *   byte never fired). The first message counts from the connection's
 *   opening: a client connects to send a query, and a silent connection
 *   would otherwise hold a slot for the idle time (BIND's
 *   tcp-initial-timeout plays this part).
 * - `idle`: after an answer, with nothing under way, the next message must
 *   begin within dns.tcp.idleTimeout (RFC 7766 §6.2.3: seconds).
 *
 * A client that does not read its answers stops being read (back-pressure),
 * so it cannot grow our write buffer; the deadlines then close it.
 */
export class TcpSession {
  readonly #socket: Socket
  readonly #deps: TcpSessionDeps
  #pending: Buffer = Buffer.alloc(0)
  #deadline: Timer | undefined
  #waitingFor: TcpTimeout = 'message'

  constructor (socket: Socket, deps: TcpSessionDeps) {
    this.#socket = socket
    this.#deps = deps
    this.#arm('message')
    socket.on('close', () => { this.#deadline?.cancel() })
    socket.on('data', (chunk: Buffer) => { this.#received(chunk) })
  }

  #received (chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let hasCompleted = false
    while (this.#pending.length >= 2) {
      const length = this.#pending.readUInt16BE(0)
      if (this.#pending.length < 2 + length) break
      const query = this.#pending.subarray(2, 2 + length)
      this.#pending = this.#pending.subarray(2 + length)
      hasCompleted = true
      const answer = this.#deps.answer(query)
      if (answer !== undefined) this.#write(answer)
    }
    if (this.#pending.length > 0) {
      // A message under way: its deadline counts from its first byte, never reset by more bytes.
      if (hasCompleted || this.#waitingFor === 'idle') this.#arm('message')
    } else if (hasCompleted) {
      this.#arm('idle')
    }
  }

  #write (answer: Buffer): void {
    const framed = Buffer.alloc(2 + answer.length)
    framed.writeUInt16BE(answer.length, 0)
    answer.copy(framed, 2)
    if (this.#socket.write(framed) || this.#socket.isPaused()) return
    this.#socket.pause()
    this.#socket.once('drain', () => { this.#socket.resume() })
  }

  #arm (waitingFor: TcpTimeout): void {
    this.#deadline?.cancel()
    this.#waitingFor = waitingFor
    const { messageTimeoutMs, idleTimeoutMs } = this.#deps.limits()
    this.#deadline = this.#deps.clock.setTimeout(() => {
      this.#deps.onTimeout?.(waitingFor)
      this.#socket.destroy()
    }, waitingFor === 'message' ? messageTimeoutMs : idleTimeoutMs, { unref: true })
  }
}
