import { randomBytes } from 'node:crypto'
import type { Clock, Timer } from '../util/clock.js'

/** What OpenSSL takes as a ticket key (Node's setTicketKeys): a 16-byte name, a 16-byte HMAC secret, a 16-byte AES key. */
export const TICKET_KEY_BYTES = 48

export type SessionTicketOptions = {
  readonly clock: Clock
  readonly rotateEveryMs: number
  /** A new key: every data plane's HTTPS listener takes it (cluster/ carries it to the workers). */
  readonly onKey: (key: Buffer) => void
  /** Where keys come from; tests pass their own. */
  readonly generate?: () => Buffer
}

/**
 * The session ticket key of every HTTPS listener of this gateway, owned by
 * the control plane. Node makes a random key per process, so with workers a
 * ticket one worker issued was useless on the others: a returning client
 * resumed only when the kernel handed its connection to the same worker
 * (1 in N). One key made here and given to every data plane makes a ticket
 * good on any worker, as HAProxy's `tls-ticket-keys` file and Caddy's
 * shared STEK do.
 *
 * Node's TLS server holds one key (no previous key to decrypt with), so a
 * rotation turns every ticket out there into a full handshake, once; a
 * restart makes a new key too (the key never touches the disk). A key lives
 * at most `rotateEveryMs`, which bounds how much recorded traffic one stolen
 * key would open (RFC 8446 §4.6.1 recommends rotating).
 */
export class SessionTicketKeys {
  readonly #options: SessionTicketOptions
  readonly #generate: () => Buffer
  #rotateEveryMs: number
  #key: Buffer
  #timer: Timer | undefined

  constructor (options: SessionTicketOptions) {
    this.#options = options
    this.#generate = options.generate ?? (() => randomBytes(TICKET_KEY_BYTES))
    this.#rotateEveryMs = options.rotateEveryMs
    this.#key = this.#generate()
    this.#schedule()
  }

  /** The key new tickets are made with, and the only one a ticket is read with. */
  get key (): Buffer { return this.#key }

  /** A reload's rotateEvery: the current key lives until the new interval from now (a changed interval only). */
  setRotateEvery (ms: number): void {
    if (ms === this.#rotateEveryMs) return
    this.#rotateEveryMs = ms
    this.#schedule()
  }

  stop (): void {
    this.#timer?.cancel()
    this.#timer = undefined
  }

  #schedule (): void {
    this.#timer?.cancel()
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#key = this.#generate()
      this.#options.onKey(this.#key)
      this.#schedule()
    }, this.#rotateEveryMs, { unref: true })
  }
}
