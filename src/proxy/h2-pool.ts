import { EventEmitter } from 'node:events'
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Clock } from '../util/clock.js'
import { H2Code, H2Exchange, H2UpstreamError, requestHeaders, type LegacyHandler } from './h2-exchange.js'

export { H2Code, H2UpstreamError, type LegacyHandler } from './h2-exchange.js'

const { NGHTTP2_REFUSED_STREAM } = http2.constants

export type H2PoolOptions = {
  readonly connectTimeoutMs: number
  /** Connections (sessions) to the instance at most; each carries up to its peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxSessions: number
  /** A session this old takes no new stream (maxConnectionAge). */
  readonly maxAgeMs?: number | undefined
  /** A session with no stream for this long is closed. */
  readonly idleTimeoutMs: number
  /** TLS (protocol h2): the name sent and verified, the CA, whether to verify. */
  readonly tls?: { readonly servername: string, readonly rejectUnauthorized: boolean, readonly ca?: Buffer } | undefined
  readonly clock: Clock
}

/** Streams a session is given before its peer's SETTINGS say how many it takes (Node's own server default). */
const DEFAULT_STREAMS = 100

type Session = {
  readonly session: ClientHttp2Session
  readonly exchanges: Set<H2Exchange>
  readonly bornMs: number
  isReady: boolean
  isGoingAway: boolean
  open: number
}

type Job = { readonly options: Dispatcher.DispatchOptions, readonly handler: LegacyHandler }

/**
 * A keep-alive pool of HTTP/2 connections to one instance, with undici's
 * dispatch contract, so that an attempt cannot tell it from a Pool. Written
 * over node:http2 because undici's HTTP/2 client (7.30 and 8.14) drops the
 * body bytes it still holds when the trailers arrive while the response is
 * paused by back-pressure: every gRPC answer ends in trailers, and a slow
 * client would get a short answer with an OK status
 * (test/unit/proxy/h2-pool.test.ts shows it, and fails when undici is fixed).
 * Here the answer ends at the stream's 'end', after every byte was read.
 */
export class H2Pool extends EventEmitter {
  readonly #origin: string
  readonly #options: H2PoolOptions
  readonly #sessions: Session[] = []
  readonly #queue: Job[] = []
  #connecting = 0
  #running = 0
  #isClosed = false

  constructor (origin: string, options: H2PoolOptions) {
    super()
    this.#origin = origin
    this.#options = options
  }

  get stats (): { connected: number, running: number, pending: number } {
    return { connected: this.#sessions.length, running: this.#running, pending: this.#queue.length }
  }

  dispatch (options: Dispatcher.DispatchOptions, handler: LegacyHandler): boolean {
    if (this.#isClosed) throw new H2UpstreamError(H2Code.STREAM_RESET, `${this.#origin}: pool closed`)
    if (options.upgrade !== undefined && options.upgrade !== null) {
      throw new H2UpstreamError(H2Code.UNSUPPORTED, `${this.#origin}: an upgrade (${String(options.upgrade)}) cannot go to an HTTP/2 instance`)
    }
    this.#queue.push({ options, handler })
    this.#pump()
    return true
  }

  async close (): Promise<void> {
    this.#isClosed = true
    this.#failQueued(new H2UpstreamError(H2Code.STREAM_RESET, `${this.#origin}: pool closed`))
    await Promise.all(this.#sessions.map(async ({ session }) => { await new Promise<void>((resolve) => { session.close(resolve) }) }))
  }

  async destroy (): Promise<void> {
    this.#isClosed = true
    this.#failQueued(new H2UpstreamError(H2Code.STREAM_RESET, `${this.#origin}: pool destroyed`))
    for (const { session } of [...this.#sessions]) session.destroy()
  }

  #pump (): void {
    while (this.#queue.length > 0) {
      const session = this.#usable()
      if (session === undefined && this.#takesNoStreams()) {
        // SETTINGS_MAX_CONCURRENT_STREAMS 0: more connections would not help (nothing was sent: another instance may serve).
        this.#failQueued(new H2UpstreamError(H2Code.REFUSED_STREAM, `${this.#origin}: the instance takes no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)`, NGHTTP2_REFUSED_STREAM))
        return
      }
      if (session === undefined) {
        // One connection being made at a time carries the queue; another only when the queue outgrows it.
        const wanted = this.#connecting === 0 || this.#queue.length > this.#connecting * DEFAULT_STREAMS
        if (wanted && this.#sessions.length < this.#options.maxSessions) this.#connect()
        return
      }
      this.#start(this.#queue.shift() as Job, session)
    }
  }

  #usable (): Session | undefined {
    const maxAgeMs = this.#options.maxAgeMs
    const now = maxAgeMs === undefined ? 0 : this.#options.clock.now()
    for (const entry of this.#sessions) {
      if (!entry.isReady || entry.isGoingAway || entry.session.destroyed || entry.session.closed) continue
      if (maxAgeMs !== undefined && now - entry.bornMs >= maxAgeMs) {
        entry.isGoingAway = true
        if (entry.open === 0) entry.session.close()
        continue
      }
      const limit = Math.min(DEFAULT_STREAMS, entry.session.remoteSettings.maxConcurrentStreams ?? DEFAULT_STREAMS)
      if (entry.open < limit) return entry
    }
    return undefined
  }

  /** Every ready connection says it takes no stream at all. */
  #takesNoStreams (): boolean {
    const ready = this.#sessions.filter((entry) => entry.isReady && !entry.isGoingAway)
    return ready.length > 0 && ready.every((entry) => entry.session.remoteSettings.maxConcurrentStreams === 0)
  }

  #connect (): void {
    const { tls, connectTimeoutMs, idleTimeoutMs, clock } = this.#options
    this.#connecting++
    const session = http2.connect(this.#origin, {
      ...(tls === undefined ? {} : { servername: tls.servername, rejectUnauthorized: tls.rejectUnauthorized, ALPNProtocols: ['h2'], ...(tls.ca === undefined ? {} : { ca: tls.ca }) }),
      settings: { enablePush: false }
    })
    const entry: Session = { session, exchanges: new Set(), bornMs: clock.now(), isReady: false, isGoingAway: false, open: 0 }
    this.#sessions.push(entry)
    const timer = clock.setTimeout(() => {
      session.destroy(new H2UpstreamError(H2Code.CONNECT_TIMEOUT, `${this.#origin}: no HTTP/2 connection within ${connectTimeoutMs} ms`))
    }, connectTimeoutMs)
    let failure: Error | undefined
    // Ready once the peer's SETTINGS came (its first frame): how many streams it takes is known, none is refused for it.
    session.on('remoteSettings', () => {
      if (!entry.isReady) {
        timer.cancel()
        this.#connecting--
        entry.isReady = true
        this.emit('connect', this.#origin)
      }
      this.#pump()
    })
    session.on('goaway', (_code: number, lastStreamId: number) => {
      entry.isGoingAway = true
      for (const exchange of entry.exchanges) exchange.refusedByGoaway(lastStreamId)
      this.#pump()
    })
    session.on('error', (error) => { failure = error })
    session.setTimeout(idleTimeoutMs, () => { if (entry.open === 0) session.close() })
    session.once('close', () => {
      timer.cancel()
      const index = this.#sessions.indexOf(entry)
      if (index >= 0) this.#sessions.splice(index, 1)
      if (!entry.isReady) {
        this.#connecting--
        // Nothing was sent: every request waiting for this instance fails as a connect failure and moves on.
        const error = failure ?? new H2UpstreamError(H2Code.STREAM_RESET, `${this.#origin}: connection closed before it was ready`)
        this.#failQueued(error)
        this.emit('connectionError', this.#origin, [], error)
        return
      }
      this.emit('disconnect', this.#origin, [], failure ?? null)
      this.#pump()
    })
  }

  #failQueued (error: Error): void {
    for (const { handler } of this.#queue.splice(0)) handler.onError?.(error)
  }

  #start (job: Job, entry: Session): void {
    const { options, handler } = job
    const body = options.body as Readable | Buffer | string | null | undefined
    const hasBody = body !== null && body !== undefined && !(typeof body === 'string' && body.length === 0)
    let stream: ClientHttp2Stream
    try {
      stream = entry.session.request(requestHeaders(options, this.#origin), { endStream: !hasBody })
    } catch (error) {
      handler.onError?.(error as Error)
      return
    }
    entry.open++
    this.#running++
    const exchange = new H2Exchange(stream, handler, options)
    entry.exchanges.add(exchange)
    stream.once('close', () => {
      entry.exchanges.delete(exchange)
      entry.open--
      this.#running--
      exchange.closed()
      if (entry.open === 0 && entry.isGoingAway) entry.session.close()
      this.#pump()
    })
    exchange.begin(hasBody ? body : undefined)
  }
}
