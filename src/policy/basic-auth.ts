import { createHmac, randomBytes } from 'node:crypto'
import { ErrorCode, ProxyError, withoutStack } from '../errors.js'
import type { UsersTable } from '../config/users-file.js'
import { BcryptThreads } from './bcrypt-threads.js'

/** Valid credentials remembered (by keyed digest, never the password): most requests of a session then cost one HMAC. */
const REMEMBERED = 4096
/**
 * Refusals remembered, apart: a flood of distinct guesses churns these and
 * never pushes a user's remembered login out (only right passwords enter the other).
 */
const REMEMBERED_REFUSALS = 1024
/** bcrypt checks running at once, each on a thread of its own: two of a small machine's cores at most. */
const RUNNING = 2
/** Checks waiting beyond those; past it a request gets 503 auth_unavailable rather than a queue that grows under a guessing flood. */
export const MAX_WAITING = 64

const CREDENTIALS = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i

/**
 * access.basicAuth (RFC 7617) against the htpasswd tables of the running
 * configuration (config/users-file.ts), checked by bcryptjs on threads of
 * their own (bcrypt-threads.ts): a check (≈ 50–100 ms at cost 10) never
 * stalls the event loop, and the hashes are compared in constant time. An
 * unknown user costs a check against another hash, so timing does not tell
 * which users exist.
 *
 * Outcomes are remembered under an HMAC with a key of this process (as
 * Caddy caches its basic_auth results), including the stored hash: a
 * changed or removed user is checked afresh. Checks are bounded (RUNNING at
 * once, MAX_WAITING waiting). A password is never logged nor kept.
 */
export class BasicAuth {
  #tables: ReadonlyMap<string, UsersTable>
  readonly #key = randomBytes(32)
  readonly #valid = new Map<string, true>()
  readonly #refused = new Map<string, true>()
  #running = 0
  /** Where the checks run: threads of their own (bcrypt-threads.ts), one per check running at once. */
  readonly #threads = new BcryptThreads(RUNNING)
  readonly #waiting: Array<() => void> = []

  constructor (tables: ReadonlyMap<string, UsersTable>) {
    this.#tables = tables
  }

  /** The tables of the configuration that now runs (a reload's commit). */
  use (tables: ReadonlyMap<string, UsersTable>): void {
    this.#tables = tables
  }

  async close (): Promise<void> { await this.#threads.close() }

  /** Checks waiting for a turn (for tests and /metrics). */
  get waiting (): number { return this.#waiting.length }

  /**
   * Undefined when `authorization` holds a user and password of `usersFile`;
   * else the 401 (with `realm`'s challenge) or 503. A remembered outcome is
   * answered at once; a new one after its bcrypt check.
   */
  check (usersFile: string, realm: string, authorization: string | undefined): ProxyError | undefined | Promise<ProxyError | undefined> {
    const challenge = `Basic realm="${realm}", charset="UTF-8"`
    const match = authorization === undefined ? null : CREDENTIALS.exec(authorization)
    if (match === null) return withoutStack(() => new ProxyError(ErrorCode.AUTH_REQUIRED, authorization === undefined ? 'basicAuth: no credentials' : 'basicAuth: malformed credentials', undefined, { challenge }))
    const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const table = this.#tables.get(usersFile)
    if (colon < 0 || table === undefined) return withoutStack(() => new ProxyError(ErrorCode.AUTH_REQUIRED, 'basicAuth: malformed credentials', undefined, { challenge }))
    const user = decoded.slice(0, colon)
    const hash = table.get(user)
    const digest = createHmac('sha256', this.#key).update(`${usersFile}\0${user}\0${hash ?? ''}\0`).update(decoded.slice(colon + 1)).digest('base64')
    if (this.#valid.has(digest)) return undefined
    if (this.#refused.has(digest)) return refused(challenge)
    if (this.#running >= RUNNING && this.#waiting.length >= MAX_WAITING) {
      return new ProxyError(ErrorCode.AUTH_UNAVAILABLE, `basicAuth: ${MAX_WAITING} password checks already waiting`)
    }
    // An unknown user is checked against a hash of the file all the same (the answer is no either way).
    const against = hash ?? (table.values().next().value as string)
    return this.#compare(decoded.slice(colon + 1), against).then((isMatch) => {
      const isValid = isMatch && hash !== undefined
      this.#remember(digest, isValid)
      return isValid ? undefined : refused(challenge)
    })
  }

  async #compare (password: string, hash: string): Promise<boolean> {
    // A finished check hands its turn to the next one waiting (#running stays), so none jumps the queue.
    if (this.#running < RUNNING) this.#running++
    else await new Promise<void>((resolve) => { this.#waiting.push(resolve) })
    try {
      return await this.#threads.compare(password, hash)
    } catch {
      return false
    } finally {
      const next = this.#waiting.shift()
      if (next === undefined) this.#running--
      else next()
    }
  }

  #remember (digest: string, isValid: boolean): void {
    const remembered = isValid ? this.#valid : this.#refused
    if (remembered.size >= (isValid ? REMEMBERED : REMEMBERED_REFUSALS)) remembered.delete(remembered.keys().next().value as string)
    remembered.set(digest, true)
  }
}

function refused (challenge: string): ProxyError {
  return withoutStack(() => new ProxyError(ErrorCode.AUTH_REQUIRED, 'basicAuth: unknown user or wrong password', undefined, { challenge }))
}
