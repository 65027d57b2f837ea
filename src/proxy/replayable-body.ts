import { Readable } from 'node:stream'
import { ErrorCode, ProxyError } from '../errors.js'
import { systemClock, type Clock, type Timer } from '../util/clock.js'

export type BodyLimits = {
  /** Longest pause while undici waits for the client's next bytes (client.bodyIdleTimeout); 0: none. */
  readonly idleTimeoutMs?: number
  /** Slowest the client may send, averaged over RATE_WINDOW_MS (client.minBodyRate); 0: no floor. */
  readonly minBytesPerSecond?: number
  /** The body's first bytes kept to send again (0: none): up to this many, an attempt that consumed them can be retried. */
  readonly keepBytes?: number
}

/** A streamed body's first bytes kept for a retry (a refused HTTP/2 stream consumed them): a gRPC message, a small form. */
export const KEEP_BODY_BYTES = 16 * 1024

/** The window client.minBodyRate is averaged over. */
export const RATE_WINDOW_MS = 10_000

/**
 * Hands a request body to one attempt at a time without giving the source
 * away: each attempt gets a fresh stream that reads from the source only when
 * undici pulls, with backpressure. A connect failure destroys the attempt's
 * stream, not the source, so the next instance gets the body whole (a plain
 * pipe would lose it: undici destroys a body stream on a failed connect). Past `keepBytes`
 * pulled, the body can no longer be replayed: up to it (a gRPC call's message, most often), the
 * bytes are kept, and a stream the instance refused (REFUSED_STREAM) can go to another.
 *
 * The client's side is watched too: a source that was already gone when
 * undici asked, or that closes before its end, fails the attempt with
 * CLIENT_GONE; a source that sends nothing for `idleTimeoutMs` while undici
 * waits for it fails it with CLIENT_TIMEOUT (HAProxy's `timeout client`), and
 * so does a client that keeps sending, but slower than `minBytesPerSecond`
 * over a RATE_WINDOW_MS window in which undici waited on it for at least half
 * the time (a body held back by a slow instance is not the client's fault):
 * a slow or abandoned upload never holds an instance's connection for long.
 */
export class ReplayableBody {
  readonly #source: Readable
  readonly #idleTimeoutMs: number
  readonly #minBytesPerSecond: number
  #bytesPulled = 0
  readonly #keepBytes: number
  /** What was pulled so far, while it is at most keepBytes; undefined past that (no replay). */
  #kept: Buffer[] | undefined = []
  #failure: ProxyError | undefined
  #current: Readable | undefined
  readonly #clock: Clock
  #idleTimer: Timer | undefined
  #rateTimer: Timer | undefined

  constructor (source: Readable, limits: BodyLimits = {}, clock: Clock = systemClock) {
    this.#source = source
    this.#idleTimeoutMs = limits.idleTimeoutMs ?? 0
    this.#minBytesPerSecond = limits.minBytesPerSecond ?? 0
    this.#keepBytes = limits.keepBytes ?? 0
    this.#clock = clock
  }

  get canReplay (): boolean { return this.#bytesPulled === 0 || this.#kept !== undefined }

  /** Bytes read from the client so far. */
  get bytesReceived (): number { return this.#bytesPulled }

  /** The client's side of the body broke (it went away or stalled mid-upload): not an instance's fault. */
  get hasSourceFailed (): boolean { return this.#failure !== undefined }

  /** Why the client's side failed (CLIENT_GONE or CLIENT_TIMEOUT). */
  get failure (): ProxyError | undefined { return this.#failure }

  /** The request is over: stop watching the source. */
  abandon (): void {
    this.#idleTimer?.cancel()
    this.#rateTimer?.cancel()
    this.#current?.destroy()
    this.#current = undefined
  }

  /** A stream for the next attempt; the previous attempt's stream is let go. */
  forAttempt (): Readable {
    this.#current?.destroy()
    this.#idleTimer?.cancel()
    this.#rateTimer?.cancel()
    const source = this.#source
    let wantsData = false
    let isAttached = false
    // client.minBodyRate: bytes and time spent waiting on the client in the current window.
    let windowBytes = 0
    let starvedMs = 0
    let starvedSince: number | undefined
    const pump = (): void => {
      this.#idleTimer?.cancel()
      if (starvedSince !== undefined) {
        starvedMs += this.#clock.now() - starvedSince
        starvedSince = undefined
      }
      while (wantsData) {
        const chunk = source.read() as Buffer | null
        if (chunk === null) {
          if (source.readableEnded) end()
          else {
            starvedSince = this.#clock.now()
            armIdleTimer()
          }
          return
        }
        this.#bytesPulled += chunk.length
        if (this.#kept !== undefined) {
          if (this.#bytesPulled <= this.#keepBytes) this.#kept.push(chunk)
          else this.#kept = undefined
        }
        windowBytes += chunk.length
        wantsData = attempt.push(chunk)
      }
    }
    const armRateTimer = (): void => {
      const floor = this.#minBytesPerSecond
      if (floor <= 0) return
      this.#rateTimer = this.#clock.setTimeout(() => {
        const now = this.#clock.now()
        if (starvedSince !== undefined) {
          starvedMs += now - starvedSince
          starvedSince = now
        }
        const isClientSlow = starvedMs >= RATE_WINDOW_MS / 2 && windowBytes < floor * RATE_WINDOW_MS / 1000
        windowBytes = 0
        starvedMs = 0
        if (isClientSlow) fail(new ProxyError(ErrorCode.CLIENT_TIMEOUT, `request body slower than client.minBodyRate (${floor} bytes/s over ${RATE_WINDOW_MS / 1000} s)`))
        else armRateTimer()
      }, RATE_WINDOW_MS)
    }
    const armIdleTimer = (): void => {
      if (this.#idleTimeoutMs <= 0) return
      this.#idleTimer = this.#clock.setTimeout(() => {
        fail(new ProxyError(ErrorCode.CLIENT_TIMEOUT, `request body paused longer than client.bodyIdleTimeout (${this.#idleTimeoutMs} ms)`))
      }, this.#idleTimeoutMs)
    }
    const end = (): void => { detach(); attempt.push(null) }
    const fail = (error: ProxyError): void => {
      this.#failure ??= error
      detach()
      attempt.destroy(error)
    }
    const onError = (error: Error): void => {
      // Node's parser failed on the body (a bad chunk): the client is still there and gets 400.
      const isMalformed = String((error as NodeJS.ErrnoException).code ?? '').startsWith('HPE_')
      fail(new ProxyError(isMalformed ? ErrorCode.REQUEST_MALFORMED : ErrorCode.CLIENT_GONE, `request body broke: ${error.message}`, undefined, { cause: error }))
    }
    // IncomingMessage closes without 'end' when the client's connection goes mid-body.
    const onClose = (): void => { if (!source.readableEnded) fail(new ProxyError(ErrorCode.CLIENT_GONE, 'the client closed its connection mid-body')) }
    const detach = (): void => {
      this.#idleTimer?.cancel()
      this.#rateTimer?.cancel()
      source.removeListener('readable', pump)
      source.removeListener('end', end)
      source.removeListener('error', onError)
      source.removeListener('close', onClose)
    }
    const attempt: Readable = new Readable({
      read: () => {
        wantsData = true
        if (!isAttached) {
          // Listen only once undici asks: until then nothing leaves the source.
          isAttached = true
          // What an earlier attempt took (and was kept) goes first.
          for (const chunk of this.#kept ?? []) attempt.push(chunk)
          if (source.readableEnded) return end()
          if (source.destroyed) return onClose()
          source.on('readable', pump)
          source.once('end', end)
          source.once('error', onError)
          source.once('close', onClose)
          armRateTimer()
        }
        pump()
      },
      destroy: (error, callback) => {
        detach()
        callback(error)
      }
    })
    this.#current = attempt
    return attempt
  }
}
