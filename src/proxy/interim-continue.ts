import type { Socket } from 'node:net'
import { buildConnector } from 'undici'
import { tapUpstreamSocket, type SocketTap } from './undici-internals.js'

/** A request head as undici writes it: one latin1 string opening with the request line. */
const REQUEST_LINE = /^[A-Z-]+ \S+ HTTP\/1\.1\r\n/
/** `HTTP/1.1 100 ` or `HTTP/1.1 100\r`: an interim 100 (Continue) status line. */
const CONTINUE_LINE = /^HTTP\/1\.[01] 100[ \r]/
const CONTINUE_PREFIXES = ['HTTP/1.1 100 ', 'HTTP/1.0 100 ', 'HTTP/1.1 100\r', 'HTTP/1.0 100\r']
/** An interim head longer than this is not believed: the bytes go to the parser as they are. */
export const MAX_INTERIM_HEAD = 8192

/**
 * undici's connector, with one repair on every connection it makes. RFC 9110
 * §15.2 lets a server send `100 Continue` a client did not ask for, and says
 * a client must ignore it; undici (which never sends Expect) destroys the
 * socket instead, so the request would fail with a 502. Here the interim
 * head is taken out of the byte stream before undici's parser reads it, at
 * the start of a response only (after a request head was written and before
 * any other status line), so a body can never be altered. How the bytes are
 * reached (a patched socket): undici-internals.ts.
 */
export function tolerantConnector (options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options)
  return (connectOptions, callback) => {
    connect(connectOptions, (error, socket) => {
      if (error === null && socket !== null) tapUpstreamSocket(socket as Socket, new InterimContinueFilter())
      ;(callback as (error: Error | null, socket: unknown) => void)(error, socket)
    })
  }
}

/**
 * Unsolicited interim 100 heads, taken out of one connection's response
 * bytes: watched from a request head written until the first status line
 * read, so a body can never be altered. A partial head is held until its
 * end arrives (or MAX_INTERIM_HEAD, past which it is not believed).
 */
export class InterimContinueFilter implements SocketTap {
  #isAwaitingStatus = false
  #held: Buffer | undefined

  get isFiltering (): boolean { return this.#isAwaitingStatus || this.#held !== undefined }

  wrote (chunk: unknown): void {
    if (!this.#isAwaitingStatus && typeof chunk === 'string' && isUpperCaseLetter(chunk.charCodeAt(0)) && REQUEST_LINE.test(chunk)) this.#isAwaitingStatus = true
  }

  filter (fresh: Buffer | null, isEnded: boolean): Buffer | null {
    let chunk = fresh
    if (this.#held !== undefined) {
      chunk = chunk === null ? this.#held : Buffer.concat([this.#held, chunk])
      this.#held = undefined
    }
    if (chunk === null || isEnded) return chunk
    while (this.#isAwaitingStatus) {
      // `HTTP/1.x 2…`: a final status at once (the usual case), no string made.
      if (chunk.length >= 13 && chunk[9] !== 0x31) {
        this.#isAwaitingStatus = false
        break
      }
      const start = chunk.subarray(0, 13).toString('latin1')
      if (chunk.length < 13 && CONTINUE_PREFIXES.some((prefix) => prefix.startsWith(start))) {
        this.#held = chunk
        return null
      }
      if (!CONTINUE_LINE.test(start)) {
        this.#isAwaitingStatus = false
        break
      }
      const end = chunk.indexOf('\r\n\r\n')
      if (end < 0) {
        if (chunk.length > MAX_INTERIM_HEAD) { this.#isAwaitingStatus = false; break }
        this.#held = chunk
        return null
      }
      chunk = chunk.subarray(end + 4)
      if (chunk.length === 0) return null
    }
    return chunk
  }
}

/** A request line opens with its method: an upper-case letter (chunk-size lines and bodies mostly do not). */
function isUpperCaseLetter (code: number): boolean {
  return code >= 65 && code <= 90
}
