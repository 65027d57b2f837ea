import type { Socket } from 'node:net'
import type { Clock, Timer } from '../util/clock.js'

/** How often idle connections are looked at: the bound is kept within this. */
const SWEEP_MS = 1000

const WATCHED = Symbol('srvgate.idleWatched')
/** Requests under way on the connection (HTTP/1.1 pipelining can have more than one). */
const UNDER_WAY = Symbol('srvgate.requestsUnderWay')
type Watched = Socket & { [WATCHED]?: true, [UNDER_WAY]?: number }

/**
 * Plain-HTTP keep-alive connections between requests, closed once idle for
 * longer than `limitMs()` (client.keepAliveTimeout + client.headersTimeout).
 * Node's own keep-alive timer is an inactivity timer: a client that sends a
 * bare CRLF every few seconds (bytes that start no request) resets it
 * forever, and its headers timer never starts. This bound counts from the end
 * of the last answer, whatever arrives. One sweep a second over the idle
 * connections, rather than a timer per request.
 */
export class IdleConnections {
  readonly #clock: Clock
  readonly #limitMs: () => number
  readonly #idleSince = new Map<Socket, number>()
  #sweep: Timer | undefined

  constructor (clock: Clock, limitMs: () => number) {
    this.#clock = clock
    this.#limitMs = limitMs
  }

  /** A request arrived on `socket`. */
  busy (socket: Socket): void {
    const watched = socket as Watched
    watched[UNDER_WAY] = (watched[UNDER_WAY] ?? 0) + 1
    this.#idleSince.delete(socket)
  }

  /** An answer on `socket` is done: idle from now until its next request, once none is under way. */
  idle (socket: Socket): void {
    const watched = socket as Watched
    const left = (watched[UNDER_WAY] ?? 1) - 1
    watched[UNDER_WAY] = left
    if (left > 0 || socket.destroyed) return
    if (watched[WATCHED] !== true) {
      watched[WATCHED] = true
      socket.once('close', () => { this.#idleSince.delete(socket) })
    }
    this.#idleSince.set(socket, this.#clock.now())
    this.#sweep ??= this.#clock.setTimeout(() => { this.#closeStale() }, SWEEP_MS, { unref: true })
  }

  #closeStale (): void {
    this.#sweep = undefined
    const oldest = this.#clock.now() - this.#limitMs()
    for (const [socket, since] of this.#idleSince) {
      if (since > oldest) continue
      this.#idleSince.delete(socket)
      socket.destroy()
    }
    if (this.#idleSince.size > 0) this.#sweep = this.#clock.setTimeout(() => { this.#closeStale() }, SWEEP_MS, { unref: true })
  }

  stop (): void {
    this.#sweep?.cancel()
    this.#sweep = undefined
  }
}
