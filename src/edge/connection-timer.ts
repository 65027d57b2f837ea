import type { Socket } from 'node:net'
import type { ServerHttp2Session } from 'node:http2'
import type { Clock, Timer } from '../util/clock.js'

/** The client limits this timer applies, read when each phase starts (a reload changes them for the next phase). */
export type TimerLimits = { readonly headersTimeoutMs: number, readonly keepAliveTimeoutMs: number }

export type TimerEvents = {
  /** The deadline passed before the handshake was done: the listener counts it and closes the connection. */
  readonly handshakeTimedOut: (raw: Socket) => void
  /**
   * The head deadline passed on HTTP/1.1: answer 408 on the socket and close, or, when no byte of a
   * request came after the handshake (a preconnect), close without an answer.
   */
  readonly headTimedOut: (socket: Socket, hasRequestBytes: boolean) => void
}

/** After GOAWAY, how long a session that does not close by itself is given before it is destroyed. */
const GOAWAY_GRACE_MS = 1000

/**
 * The limits plain HTTP gets from Node's http server, for one connection on
 * the HTTPS listener (Node's HTTP/2 server and its HTTP/1.1 fallback apply
 * none of them). From accept, one absolute deadline, client.headersTimeout,
 * bounds the ClientHello, the handshake and the first request head together:
 * bytes sent slowly never push it back. Between requests (no HTTP/2 stream
 * open, no HTTP/1.1 request under way), client.keepAliveTimeout bounds the
 * pause: then an HTTP/2 session gets GOAWAY and is closed, and an HTTP/1.1
 * connection is closed, unless bytes of a next request arrived meanwhile,
 * whose head then gets client.headersTimeout more. Activity is read from the
 * TCP socket's byte count: TLS leaves no other public sign of a head under way.
 */
export class ConnectionTimer {
  readonly #raw: Socket
  readonly #clock: Clock
  readonly #limits: () => TimerLimits
  readonly #events: TimerEvents
  #timer: Timer | undefined
  #active = 0
  #isTunnel = false
  /** The TLS socket once the handshake is done (what a 408 is written on). */
  #secure: Socket | undefined
  #session: ServerHttp2Session | undefined
  /** The TCP bytes read when the handshake was done: more since means a request was begun. */
  #securedAtBytes = 0
  #hadRequest = false

  constructor (raw: Socket, clock: Clock, limits: () => TimerLimits, events: TimerEvents) {
    this.#raw = raw
    this.#clock = clock
    this.#limits = limits
    this.#events = events
    this.#arm(limits().headersTimeoutMs, () => { this.#headTimedOut() })
    raw.once('close', () => { this.#cancel() })
  }

  /** The handshake is held while the name's certificate is obtained (tls.acme.onDemand): the deadline moves past the wait. */
  heldFor (ms: number): void { this.#arm(ms + this.#limits().headersTimeoutMs, () => { this.#headTimedOut() }) }

  /** The handshake is done: the TLS socket, and its HTTP/2 session if ALPN chose h2. */
  secured (socket: Socket): void {
    this.#secure = socket
    this.#securedAtBytes = this.#raw.bytesRead
  }
  session (session: ServerHttp2Session): void { this.#session = session }

  /** An HTTP/1.1 request head is complete, or an HTTP/2 stream opened. */
  requestStarted (): void {
    this.#hadRequest = true
    this.#active++
    this.#cancel()
  }

  /** That request's exchange is over (answered, reset, or abandoned). */
  requestEnded (): void {
    this.#active = Math.max(0, this.#active - 1)
    if (this.#active > 0 || this.#isTunnel) return
    const mark = this.#raw.bytesRead
    this.#arm(this.#limits().keepAliveTimeoutMs, () => {
      // HTTP/1.1 bytes came while idle: the next request's head is under way and gets its own bound.
      if (this.#session === undefined && this.#raw.bytesRead > mark) this.#arm(this.#limits().headersTimeoutMs, () => { this.#headTimedOut() })
      else this.#close()
    })
  }

  /** An HTTP/1.1 upgrade (WebSocket): the connection is a tunnel now, bounded by its own limits. */
  tunnel (): void {
    this.#isTunnel = true
    this.#cancel()
  }

  #headTimedOut (): void {
    const secure = this.#secure
    if (secure === undefined) this.#events.handshakeTimedOut(this.#raw)
    else if (this.#session === undefined && secure.writable) this.#events.headTimedOut(secure, this.#hadRequest || this.#raw.bytesRead > this.#securedAtBytes)
    else this.#close()
  }

  /** HTTP/2: GOAWAY, then close (destroyed after a grace if the client keeps it); otherwise the socket goes. */
  #close (): void {
    const session = this.#session
    if (session === undefined || session.destroyed) {
      this.#raw.destroy()
      return
    }
    session.close()
    this.#arm(GOAWAY_GRACE_MS, () => { session.destroy() })
  }

  #arm (ms: number, fire: () => void): void {
    this.#cancel()
    if (ms <= 0) return
    this.#timer = this.#clock.setTimeout(fire, ms, { unref: true })
  }

  #cancel (): void {
    this.#timer?.cancel()
    this.#timer = undefined
  }
}
