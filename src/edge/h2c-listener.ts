import { createServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Clock } from '../util/clock.js'
import { ConnectionTimer, type TimerLimits } from './connection-timer.js'
import { watchSession } from './h2-sessions.js'
import { takeConnectionListener } from './node-http-internals.js'

/** HTTP/2's connection preface (RFC 9113 §3.4): a client with prior knowledge opens with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export type H2cLimits = TimerLimits & { readonly sendTimeoutMs: number, readonly maxConcurrentStreams: number, readonly maxHeaderBytes: number, readonly maxHeaderCount: number }

export type H2cOptions = {
  readonly onRequest: (request: Http2ServerRequest, response: Http2ServerResponse) => void
  readonly limits: () => H2cLimits
  readonly clock: Clock
}

/**
 * HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) on the plain listener,
 * beside HTTP/1.1 on the same port, as Envoy's codec `AUTO` and Traefik do:
 * each connection's first bytes are read before Node's HTTP/1.1 parser is
 * given the socket. The preface sends it, bytes included, to a plaintext
 * HTTP/2 server routing into the same fastify; anything else goes to Node's
 * parser as it would have. Until its first bytes a connection is bounded by
 * client.headersTimeout (closed without an answer, as HTTP/1.1 closes a
 * connection that sent nothing); an h2c connection then lives under the
 * HTTPS listener's HTTP/2 limits (edge/h2-sessions.ts, connection-timer.ts).
 * No `Upgrade: h2c` (RFC 9113 removed it; curl's --http2 on http:// falls
 * back to HTTP/1.1 when refused).
 */
export class H2cListener {
  readonly server: Http2Server
  readonly #sessions = new Set<ServerHttp2Session>()

  constructor (http: Server, options: H2cOptions) {
    const { limits, clock } = options
    this.server = createServer({
      settings: { maxConcurrentStreams: limits().maxConcurrentStreams, maxHeaderListSize: limits().maxHeaderBytes },
      maxHeaderListPairs: Math.max(2000, 2 * limits().maxHeaderCount)
    }, options.onRequest)
    this.server.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session)
      session.once('close', () => { this.#sessions.delete(session) })
      // session.socket is Node's proxy of the socket: a property reads through it, a WeakMap key would not match.
      const timer = (session.socket as WithTimer)[TIMER]
      if (timer !== undefined) watchSession(session, timer, () => limits().sendTimeoutMs)
    })
    const http1 = takeConnectionListener(http)
    http.on('connection', (socket: Socket) => {
      // Refused at admission (client.maxConnections): already gone.
      if (socket.destroyed) return
      this.#sniff(socket, http1, limits, clock)
    })
  }

  /** Read until the bytes tell HTTP/2's preface from anything else, then hand the socket over with them. */
  #sniff (socket: Socket, http1: (socket: Socket) => void, limits: () => H2cLimits, clock: Clock): void {
    let received: Buffer | undefined
    const timer = clock.setTimeout(() => { socket.destroy() }, limits().headersTimeoutMs, { unref: true })
    const done = (): void => {
      timer.cancel()
      socket.off('data', onData)
      socket.off('close', done)
    }
    const onData = (chunk: Buffer): void => {
      received = received === undefined ? chunk : Buffer.concat([received, chunk])
      const length = Math.min(received.length, PREFACE.length)
      const isPreface = received.subarray(0, length).equals(PREFACE.subarray(0, length))
      // A part of the preface so far: wait for more (the timer bounds it).
      if (isPreface && length < PREFACE.length) return
      done()
      socket.pause()
      socket.unshift(received)
      if (!isPreface) {
        http1(socket)
        // Node's parser takes new bytes from the socket's handle, and the ones read here from its stream once it flows.
        socket.resume()
        return
      }
      const h2Timer = new ConnectionTimer(socket, clock, limits, { handshakeTimedOut: (raw) => { raw.destroy() }, headTimedOut: (raw) => { raw.destroy() } })
      h2Timer.secured(socket)
      ;(socket as WithTimer)[TIMER] = h2Timer
      // Node's HTTP/1.1 server accepts half-open (allowHalfOpen: true); HTTP/2 wants a connection the client ends to
      // close: half-open, a client that drops its connection left one stream of it open until timeouts.response
      // (an attack found it).
      socket.allowHalfOpen = false
      this.server.emit('connection', socket)
    }
    socket.on('data', onData)
    socket.once('close', done)
    socket.on('error', () => {})
  }

  /** Limits a reload changed, for sessions made from now on. */
  applyLimits (limits: H2cLimits): void {
    this.server.updateSettings({ maxConcurrentStreams: limits.maxConcurrentStreams })
  }

  /** Drain: every h2c client is told to go (GOAWAY; its streams finish). */
  close (): void {
    for (const session of this.#sessions) session.close()
  }

  /** drain.timeout passed: cut what is left. */
  destroyAll (): void {
    for (const session of this.#sessions) session.destroy()
  }
}

/** Each h2c connection's timer, on its socket, found by its session. */
const TIMER = Symbol('srvgate.h2cTimer')
type WithTimer = { [TIMER]?: ConnectionTimer }
