import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import { constants as cryptoConstants } from 'node:crypto'
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls'
import type { TlsConfig } from '../config/types.js'
import type { ClientConnections } from '../edge/client-connections.js'
import { responseOnSocket } from '../edge/node-http-internals.js'
import type { Clock, Timer } from '../util/clock.js'
import { ACME_TLS_ALPN, type AcmeAnswers } from './acme-answers.js'
import { REFUSING_CONTEXT, type CertificateStore, type ServedCertificate } from './certificates.js'
import { MAX_CLIENT_HELLO, UNRECOGNIZED_NAME, alertRecord, readClientHello } from './client-hello.js'
import { ConnectionTimer, type TimerLimits } from '../edge/connection-timer.js'
import { watchSession } from '../edge/h2-sessions.js'

/** What the listener needs of the client limits, read per connection (a reload changes them for new phases). */
export type TlsListenerLimits = TimerLimits & { readonly sendTimeoutMs: number, readonly maxConcurrentStreams: number, readonly maxHeaderBytes: number, readonly maxHeaderCount: number }

export type TlsListenerOptions = {
  readonly store: CertificateStore
  readonly tls: TlsConfig
  readonly onRequest: (request: Http2ServerRequest, response: Http2ServerResponse) => void
  readonly limits: () => TlsListenerLimits
  readonly clock: Clock
  /** The process's client connections (http and https together): a connection over a cap is closed at accept. */
  readonly connections: ClientConnections
  /** An HTTP/1.1 request head not complete within client.headersTimeout: answer 408 on the socket (or close it, when no request byte came). */
  readonly headTimedOut: (socket: Socket, hasRequestBytes: boolean) => void
  readonly events?: HandshakeEvents
  /** tls.acme: the tls-alpn-01 challenges this data plane answers (RFC 8737). */
  readonly acme?: AcmeAnswers
  /** tls.acme.onDemand: a name no certificate carries is held while the control plane decides, and orders, up to waitMs. */
  readonly onDemand?: { readonly waitMs: number, readonly want: (name: string) => Promise<boolean> }
}

/** The connection's timer and the certificate its handshake served, kept on the TLS socket. */
const CONNECTION = Symbol('srvgate.tlsConnection')
type ConnectionFacts = { readonly timer: ConnectionTimer, readonly served: ServedCertificate | undefined }
type WithFacts = { [CONNECTION]?: ConnectionFacts }

/**
 * The HTTPS listener: HTTP/2 and HTTP/1.1 by ALPN on one port, the
 * certificate chosen per handshake by SNI from the store that is current at
 * that moment (a reload swaps the store; connections already open keep
 * theirs). A client without SNI gets `default`, or no certificate at all.
 * Every connection is admitted by the process's ClientConnections and timed
 * by a ConnectionTimer (edge/connection-timer.ts), so the limits plain HTTP
 * has hold here too.
 */
export class TlsListener {
  /**
   * What listens: a TCP server that reads each connection's ClientHello
   * first. A name no certificate carries (and no default) is refused with
   * `unrecognized_name` (RFC 6066) before TLS starts; everything else is
   * handed, bytes included, to `server`.
   */
  readonly listener: NetServer
  readonly server: Http2SecureServer
  #store: CertificateStore
  readonly #minVersion: TlsConfig['minVersion']
  /** SSL_OP_NO_TICKET when tls.sessionTickets.enabled is false, for the listener's own context as for SNI's. */
  readonly #secureOptions: number
  /** The control plane's key (tls/session-tickets.ts); until it comes, Node's own random one. */
  #ticketKey: Buffer | undefined
  readonly #sockets = new Set<TLSSocket>()
  readonly #sessions = new Set<ServerHttp2Session>()
  /** Every TCP connection, handshake finished or not: what drain.timeout cuts. */
  readonly #connections = new Set<Socket>()
  /**
   * Timers of connections whose handshake is not done, by peer address and
   * port: the TLS socket Node makes has no public link to the TCP socket it wraps.
   */
  readonly #handshaking = new Map<string, ConnectionTimer>()
  readonly #acme: AcmeAnswers | undefined
  /** Where a CA's tls-alpn-01 handshake goes: the challenge certificate, `acme-tls/1`, then the connection closes. */
  readonly #acmeServer: TlsServer | undefined
  readonly #onDemand: TlsListenerOptions['onDemand']
  readonly #clock: Clock

  constructor (options: TlsListenerOptions) {
    const { store, tls, limits, clock, events = {}, acme } = options
    this.#store = store
    this.#acme = acme
    this.#acmeServer = acme === undefined ? undefined : acmeChallengeServer(acme)
    this.#onDemand = options.onDemand
    this.#clock = clock
    this.#minVersion = tls.minVersion
    this.#secureOptions = tls.sessionTickets.enabled ? 0 : cryptoConstants.SSL_OP_NO_TICKET
    const headersTimeoutMs = limits().headersTimeoutMs
    this.server = createSecureServer({
      allowHTTP1: true,
      // A backstop only: the connection's timer closes an unfinished handshake at client.headersTimeout from accept.
      handshakeTimeout: headersTimeoutMs + 1000,
      // SETTINGS_MAX_HEADER_LIST_SIZE tells clients client.maxHeaderBytes; nghttp2's own cap on header
      // pairs (128 by default, a silent ENHANCE_YOUR_CALM past it) is raised so client.maxHeaderCount
      // answers 431 first, as on HTTP/1.1; maxSessionMemory still bounds what a session holds.
      settings: { maxConcurrentStreams: limits().maxConcurrentStreams, maxHeaderListSize: limits().maxHeaderBytes },
      maxHeaderListPairs: Math.max(2000, 2 * limits().maxHeaderCount),
      // Unknown names were refused before TLS (unrecognized_name, #readHello); one a reload removed in
      // between gets a context without a certificate: handshake_failure, never another name's certificate.
      SNICallback: (servername, callback) => { callback(null, this.#store.select(servername)?.context ?? REFUSING_CONTEXT) },
      ...this.#ownContext(store)
    }, (request, response) => {
      // HTTP/1.1 over TLS: the head is in, the connection is busy until the answer is done.
      if (request.httpVersionMajor !== 2) {
        const timer = (request.socket as WithFacts)[CONNECTION]?.timer
        if (timer !== undefined) {
          timer.requestStarted()
          response.once('close', () => { timer.requestEnded() })
        }
      }
      options.onRequest(request, response)
    })
    const timerEvents = {
      handshakeTimedOut: (raw: Socket) => {
        if (this.#handshaking.has(peerKey(raw))) {
          // Handed to TLS: its tlsClientError counts the reason given here.
          raw.destroy(Object.assign(new Error('TLS handshake not done within client.headersTimeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }))
        } else {
          events.handshakeFailed?.('timeout')
          raw.destroy()
        }
      },
      headTimedOut: options.headTimedOut
    }
    // TCP_NODELAY, as Node's http.Server (the plain listener) sets by default: an answer's last TLS record goes out at once.
    this.listener = createNetServer({ noDelay: true }, (socket) => {
      if (!options.connections.admit(socket, 'https')) return
      this.#connections.add(socket)
      const timer = new ConnectionTimer(socket, clock, limits, timerEvents)
      const key = peerKey(socket)
      socket.once('close', () => {
        this.#connections.delete(socket)
        if (this.#handshaking.get(key) === timer) this.#handshaking.delete(key)
      })
      // With a default certificate every name is answered: nothing to refuse, no need to read ahead
      // (unless a CA's tls-alpn-01 handshake may come: it goes elsewhere).
      if (this.#store.default !== undefined && this.#acme === undefined) this.#handOver(socket, key, timer)
      else this.#readHello(socket, key, timer, events)
    })
    // A handshake that failed or timed out: count it and close the connection
    // (with a listener here, Node leaves that to us).
    this.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      events.handshakeFailed?.(failureReason(error.code))
      socket.destroy()
    })
    // First, before Node's own listener makes the HTTP/2 session: the session finds its facts on the socket.
    this.server.prependListener('secureConnection', (socket: TLSSocket) => {
      events.handshake?.(socket.isSessionReused())
      const key = peerKey(socket)
      const timer = this.#handshaking.get(key)
      this.#handshaking.delete(key)
      if (timer !== undefined) {
        timer.secured(socket)
        // Without SNI the client named nothing: no certificate to hold its requests to (RFC 9110 §15.5.20 is about names).
        const servername = typeof socket.servername === 'string' && socket.servername !== '' ? socket.servername : undefined
        ;(socket as WithFacts)[CONNECTION] = { timer, served: servername === undefined ? undefined : this.#store.select(servername) }
      }
      this.#sockets.add(socket)
      socket.once('close', () => { this.#sockets.delete(socket) })
    })
    this.server.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session)
      session.once('close', () => { this.#sessions.delete(session) })
      const timer = (session.socket as WithFacts)[CONNECTION]?.timer
      if (timer !== undefined) watchSession(session, timer, () => limits().sendTimeoutMs)
    })
    // A WebSocket over HTTP/1.1: a tunnel now, no longer an idle keep-alive connection.
    this.server.on('upgrade', (_request: unknown, socket: WithFacts) => { socket[CONNECTION]?.timer.tunnel() })
  }

  /**
   * The certificate the handshake of a request's connection served for its
   * SNI name (undefined: no SNI, or not a TLS connection of this listener).
   * For HTTP/2 the request's socket is Node's proxy, which reads through to the TLS socket.
   */
  static servedTo (socket: unknown): ServedCertificate | undefined {
    return (socket as WithFacts | null)?.[CONNECTION]?.served
  }

  /** Limits a reload changed that apply to connections made from now on. */
  applyLimits (limits: TlsListenerLimits): void {
    this.server.updateSettings({ maxConcurrentStreams: limits.maxConcurrentStreams })
  }

  #handOver (socket: Socket, key: string, timer: ConnectionTimer): void {
    this.#handshaking.set(key, timer)
    this.server.emit('connection', socket)
  }

  get store (): CertificateStore { return this.#store }

  /** Wait for the ClientHello (bounded in size, and in time by the connection's deadline), then refuse or hand over. */
  #readHello (socket: Socket, key: string, timer: ConnectionTimer, events: HandshakeEvents): void {
    let received: Buffer = Buffer.alloc(0)
    socket.on('error', () => {})
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      const hello = readClientHello(received)
      if (hello.kind === 'incomplete' && received.length < MAX_CLIENT_HELLO) return
      socket.off('data', onData)
      socket.off('end', onEnd)
      if (hello.kind === 'hello' && this.#acmeServer !== undefined && hello.protocols.includes(ACME_TLS_ALPN)) {
        // A validation names a challenge under way, or gets the alert: never a served certificate under acme-tls/1.
        const acme = this.#acme
        const acmeServer = this.#acmeServer
        const serverName = hello.serverName
        if (serverName === undefined || acme === undefined) {
          socket.end(alertRecord(UNRECOGNIZED_NAME))
          return
        }
        socket.pause()
        void acme.findAlpnContext(serverName).then((context) => {
          if (socket.destroyed) return
          if (context === undefined) {
            socket.end(alertRecord(UNRECOGNIZED_NAME))
            return
          }
          socket.unshift(received)
          acmeServer.emit('connection', socket)
        })
        return
      }
      if (hello.kind === 'hello' && hello.serverName !== undefined && this.#onDemand !== undefined && !this.#store.carries(hello.serverName)) {
        this.#holdForCertificate(socket, key, timer, received, hello.serverName, this.#onDemand, events)
        return
      }
      if (hello.kind === 'hello' && hello.serverName !== undefined && this.#store.select(hello.serverName) === undefined) {
        events.handshakeFailed?.('unknown_name')
        socket.end(alertRecord(UNRECOGNIZED_NAME))
        return
      }
      // The TLS server reads what was already received before the socket's own stream.
      socket.pause()
      socket.unshift(received)
      this.#handOver(socket, key, timer)
    }
    const onEnd = (): void => { socket.destroy() }
    socket.on('data', onData)
    socket.once('end', onEnd)
  }

  /**
   * tls.acme.onDemand: the handshake waits (its bytes kept, the socket
   * paused) while the control plane checks the name and obtains its
   * certificate; then it goes on with it, or gets unrecognized_name.
   */
  #holdForCertificate (socket: Socket, key: string, timer: ConnectionTimer, received: Buffer, name: string, onDemand: NonNullable<TlsListenerOptions['onDemand']>, events: HandshakeEvents): void {
    socket.pause()
    timer.heldFor(onDemand.waitMs)
    let gaveUp: Timer | undefined
    const bounded = new Promise<boolean>((resolve) => { gaveUp = this.#clock.setTimeout(() => { resolve(false) }, onDemand.waitMs + 1000, { unref: true }) })
    void Promise.race([onDemand.want(name).catch(() => false), bounded]).then((isServed) => {
      gaveUp?.cancel()
      if (socket.destroyed) return
      // Served now, or (refused) the default certificate when there is one, as for any unknown name.
      if ((isServed && this.#store.carries(name)) || (!isServed && this.#store.default !== undefined)) {
        socket.unshift(received)
        this.#handOver(socket, key, timer)
        return
      }
      events.handshakeFailed?.('unknown_name')
      socket.end(alertRecord(UNRECOGNIZED_NAME))
    })
  }

  /** New handshakes use `store`; connections already open keep their certificate. */
  use (store: CertificateStore): void {
    this.#store = store
    // A new context of its own: the ticket key goes with it, or it would be a random one again.
    this.server.setSecureContext({ ...this.#ownContext(store), ...(this.#ticketKey === undefined ? {} : { ticketKeys: this.#ticketKey }) })
  }

  /**
   * Tickets are made and read with `key` from now on. OpenSSL takes the key
   * of the listener's own context for every handshake, SNI's contexts
   * included (test/unit/tls/session-tickets.test.ts).
   */
  useTicketKey (key: Buffer): void {
    this.#ticketKey = key
    this.server.setTicketKeys(key)
  }

  /** The listener's own context, for clients that send no SNI: the default certificate, or none. */
  #ownContext (store: CertificateStore): { cert?: Buffer, key?: Buffer, minVersion: TlsConfig['minVersion'], secureOptions: number } {
    const fallback = store.default
    const common = { minVersion: this.#minVersion, secureOptions: this.#secureOptions }
    return fallback === undefined ? common : { cert: fallback.cert, key: fallback.key, ...common }
  }

  /**
   * Drain: stop accepting; HTTP/2 clients are told to go (GOAWAY, their streams
   * finish), idle HTTP/1.1 connections close, busy ones after their answer
   * (Connection: close while draining). Resolves when every connection is gone.
   */
  async close (): Promise<void> {
    // The TCP listener counts every connection, handed over or not: it closes when the last one has.
    const closed = new Promise<void>((resolve) => { this.listener.close(() => { resolve() }) })
    this.server.close()
    for (const session of this.#sessions) session.close()
    for (const socket of this.#sockets) {
      if (socket.alpnProtocol !== 'h2' && responseOnSocket(socket) === undefined) socket.destroy()
    }
    return await closed
  }

  /** drain.timeout passed: cut what is left. */
  destroyAll (): void {
    for (const socket of this.#sockets) socket.destroy()
    for (const socket of this.#connections) socket.destroy()
  }
}

/**
 * The server a CA's tls-alpn-01 validation talks to: the challenge
 * certificate for the name, the one protocol `acme-tls/1`, and the connection
 * closed once the handshake is done (RFC 8737 §3: nothing is sent over it).
 */
function acmeChallengeServer (acme: AcmeAnswers): TlsServer {
  const server = createTlsServer({
    ALPNProtocols: [ACME_TLS_ALPN],
    SNICallback: (servername, callback) => { callback(null, acme.alpnContext(servername) ?? REFUSING_CONTEXT) }
  }, (socket) => { socket.end() })
  server.on('tlsClientError', (_error, socket) => { socket.destroy() })
  return server
}

/** A connection's peer, the same on the TCP socket and on the TLS socket that wraps it. */
function peerKey (socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`
}

export type HandshakeEvents = {
  /** A handshake done; `resumed`: by a session ticket, without the key exchange and the certificate. */
  readonly handshake?: (resumed: boolean) => void
  readonly handshakeFailed?: (reason: string) => void
}

/**
 * Why a handshake failed, in a few words a dashboard can group by. Refusing
 * an unknown name (no certificate in the context) surfaces as OpenSSL's
 * "null parameter" (with SNI) or "no suitable signature algorithm" (without).
 */
function failureReason (code: string | undefined): string {
  if (code === 'ERR_SSL_PASSED_A_NULL_PARAMETER' || code === 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM') return 'unknown_name'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'client_closed'
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout'
  if (code !== undefined && /VERSION|PROTOCOL|CIPHER|NO_SHARED/.test(code)) return 'protocol'
  return 'other'
}
