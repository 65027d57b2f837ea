import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { TlsConfig } from '../config/types.js'
import { REFUSING_CONTEXT, type CertificateStore } from './certificates.js'
import { MAX_CLIENT_HELLO, UNRECOGNIZED_NAME, alertRecord, readClientHello } from './client-hello.js'

/**
 * The HTTPS listener: HTTP/2 and HTTP/1.1 by ALPN on one port, the
 * certificate chosen per handshake by SNI from the store that is current at
 * that moment (a reload swaps the store; connections already open keep
 * theirs). A client without SNI gets `default`, or no certificate at all.
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
  readonly #sockets = new Set<TLSSocket>()
  readonly #sessions = new Set<ServerHttp2Session>()
  /** Every TCP connection, handshake finished or not: what drain.timeout cuts. */
  readonly #connections = new Set<Socket>()

  constructor (store: CertificateStore, tls: TlsConfig, onRequest: (request: Http2ServerRequest, response: Http2ServerResponse) => void, events: HandshakeEvents = {}, handshakeTimeoutMs = 10_000) {
    this.#store = store
    this.#minVersion = tls.minVersion
    this.server = createSecureServer({
      allowHTTP1: true,
      // A client that opens a connection and never finishes its handshake is let go (client.headersTimeout).
      handshakeTimeout: handshakeTimeoutMs,
      // Unknown names were refused before TLS (unrecognized_name, #readHello); one a reload removed in
      // between gets a context without a certificate: handshake_failure, never another name's certificate.
      SNICallback: (servername, callback) => { callback(null, this.#store.select(servername)?.context ?? REFUSING_CONTEXT) },
      ...ownCertificate(store, tls.minVersion)
    }, onRequest)
    this.listener = createNetServer((socket) => {
      this.#connections.add(socket)
      socket.once('close', () => { this.#connections.delete(socket) })
      // With a default certificate every name is answered: nothing to refuse, no need to read ahead.
      if (this.#store.default !== undefined) this.server.emit('connection', socket)
      else this.#readHello(socket, handshakeTimeoutMs, events)
    })
    // A handshake that failed or timed out (handshakeTimeout): count it and close the connection
    // (with a listener here, Node leaves that to us).
    this.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      events.handshakeFailed?.(failureReason(error.code))
      socket.destroy()
    })
    this.server.on('secureConnection', (socket: TLSSocket) => {
      events.handshake?.()
      this.#sockets.add(socket)
      socket.once('close', () => { this.#sockets.delete(socket) })
    })
    this.server.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session)
      session.once('close', () => { this.#sessions.delete(session) })
    })
  }

  get store (): CertificateStore { return this.#store }

  /** Wait for the ClientHello (bounded in size and by the handshake timeout), then refuse or hand over. */
  #readHello (socket: Socket, timeoutMs: number, events: HandshakeEvents): void {
    let received: Buffer = Buffer.alloc(0)
    socket.setTimeout(timeoutMs, () => {
      events.handshakeFailed?.('timeout')
      socket.destroy()
    })
    socket.on('error', () => {})
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      const hello = readClientHello(received)
      if (hello.kind === 'incomplete' && received.length < MAX_CLIENT_HELLO) return
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.setTimeout(0)
      if (hello.kind === 'hello' && hello.serverName !== undefined && this.#store.select(hello.serverName) === undefined) {
        events.handshakeFailed?.('unknown_name')
        socket.end(alertRecord(UNRECOGNIZED_NAME))
        return
      }
      // The TLS server reads what was already received before the socket's own stream.
      socket.pause()
      socket.unshift(received)
      this.server.emit('connection', socket)
    }
    const onEnd = (): void => { socket.destroy() }
    socket.on('data', onData)
    socket.once('end', onEnd)
  }

  /** New handshakes use `store`; connections already open keep their certificate. */
  use (store: CertificateStore): void {
    this.#store = store
    this.server.setSecureContext(ownCertificate(store, this.#minVersion))
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
      const busy = (socket as TLSSocket & { _httpMessage?: unknown })._httpMessage
      if (socket.alpnProtocol !== 'h2' && (busy === null || busy === undefined)) socket.destroy()
    }
    return await closed
  }

  /** drain.timeout passed: cut what is left. */
  destroyAll (): void {
    for (const socket of this.#sockets) socket.destroy()
    for (const socket of this.#connections) socket.destroy()
  }
}

export type HandshakeEvents = {
  readonly handshake?: () => void
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

/** The listener's own context, for clients that send no SNI: the default certificate, or none. */
function ownCertificate (store: CertificateStore, minVersion: TlsConfig['minVersion']): { cert?: Buffer, key?: Buffer, minVersion: TlsConfig['minVersion'] } {
  const fallback = store.default
  return fallback === undefined ? { minVersion } : { cert: fallback.cert, key: fallback.key, minVersion }
}
