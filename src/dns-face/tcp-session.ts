import type { Socket } from 'node:net'
import type { DnsFaceTcpConfig } from '../config/types.js'
import type { Clock, Timer } from '../util/clock.js'

/** Messages one connection gets answered in one event-loop turn. */
const MESSAGES_PER_TURN = 16
/** Answers written and not yet read by the client past which its next messages wait. */
const MAX_UNREAD_ANSWERS = 64 * 1024

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
  /** Whole messages are waiting for a later turn: the socket is paused for them. */
  #isHeld = false
  #isScheduled = false
  #isWaitingForDrain = false

  constructor (socket: Socket, deps: TcpSessionDeps) {
    this.#socket = socket
    this.#deps = deps
    this.#arm('message')
    socket.on('close', () => { this.#deadline?.cancel() })
    socket.on('data', (chunk: Buffer) => { this.#received(chunk) })
  }

  #received (chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    this.#answerPending()
  }

  /**
   * Answer the whole messages received, at most MESSAGES_PER_TURN of them in
   * one event-loop turn: a single write of thousands of pipelined queries
   * would otherwise hold the process (HTTP included) for as long as they
   * take. The rest wait for the next turn, with the socket paused.
   */
  #answerPending (): void {
    this.#isScheduled = false
    let hasCompleted = false
    let answered = 0
    while (this.#pending.length >= 2) {
      const length = this.#pending.readUInt16BE(0)
      if (this.#pending.length < 2 + length) break
      if (answered === MESSAGES_PER_TURN || this.#socket.writableLength > MAX_UNREAD_ANSWERS) {
        this.#later()
        return
      }
      const query = this.#pending.subarray(2, 2 + length)
      this.#pending = this.#pending.subarray(2 + length)
      hasCompleted = true
      answered++
      const answer = this.#deps.answer(query)
      if (answer !== undefined) this.#write(answer)
    }
    if (this.#isHeld) {
      this.#isHeld = false
      if (!this.#isWaitingForDrain) this.#socket.resume()
    }
    if (this.#pending.length > 0) {
      // A message under way: its deadline counts from its first byte, never reset by more bytes.
      if (hasCompleted || this.#waitingFor === 'idle') this.#arm('message')
    } else if (hasCompleted) {
      this.#arm('idle')
    }
  }

  /** The rest of the messages in a later turn (or once the client has read its answers); reading stops meanwhile. */
  #later (): void {
    this.#isHeld = true
    this.#socket.pause()
    if (this.#isScheduled || this.#isWaitingForDrain) return
    this.#isScheduled = true
    setImmediate(() => { if (!this.#socket.destroyed) this.#answerPending() })
  }

  #write (answer: Buffer): void {
    const framed = Buffer.alloc(2 + answer.length)
    framed.writeUInt16BE(answer.length, 0)
    answer.copy(framed, 2)
    if (this.#socket.write(framed) || this.#isWaitingForDrain) return
    this.#isWaitingForDrain = true
    this.#socket.pause()
    this.#socket.once('drain', () => {
      this.#isWaitingForDrain = false
      if (this.#isHeld) this.#answerPending()
      else this.#socket.resume()
    })
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
