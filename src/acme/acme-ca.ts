import { Agent, get as httpsGet } from 'node:https'
import { readFileSync } from 'node:fs'
import acme from 'acme-client'
import type { AcmeChallenge, AcmeConfig } from '../config/types.js'
import { AcmeError } from '../errors.js'
import { systemClock } from '../util/clock.js'
import { retryAfterMs } from './ari.js'
import { nodeHttp } from '../util/node-http.js'
import type { StoredCertificate } from './storage.js'

/** A challenge to put up on every data plane before the CA is told to validate it. */
export type PendingChallenge =
  | { readonly type: 'http-01', readonly token: string, readonly keyAuthorization: string }
  | { readonly type: 'tls-alpn-01', readonly name: string, readonly cert: string, readonly key: string }

export type ChallengeHooks = {
  /** Resolves once every data plane answers it (the CA is told to validate only then). */
  readonly put: (challenge: PendingChallenge) => Promise<void>
  readonly remove: (challenge: PendingChallenge) => void
}

/**
 * The one door to acme-client (RFC 8555: JWS, nonces, the account, orders,
 * polling, badNonce retried): srvgate writes none of that by hand. A 429 or
 * 503's Retry-After is noted here and carried by the order's AcmeError. One per directory URL and account key.
 * acme-client's own check of a challenge (it fetches the token itself) is
 * skipped: this process may not resolve the name to itself, and the CA's
 * check is the one that counts.
 */
export class AcmeCa {
  readonly #client: acme.Client
  readonly #config: AcmeConfig

  constructor (config: AcmeConfig, accountKey: string) {
    this.#config = config
    // The directory's own TLS: a private CA's root (or a test's); acme-client's requests all go
    // through its one axios instance.
    if (config.directoryCaPath !== undefined) acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(config.directoryCaPath) })
    // No request waits for ever: acme-client sets no timeout, and one CA connection that never answers held
    // every later order behind it (an outside attack found it).
    acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS
    // No retry inside a request: acme-client would sleep out a Retry-After of hours there (a rate limit),
    // past the order's 5-min bound, then send a stray request. A failed request fails the order, which
    // srvgate retries on its own schedule, no sooner than the CA's Retry-After (bad nonces are still
    // retried by acme-client at once: that is not this setting).
    acmeSettings().retryMaxAttempts = 0
    watchRetryAfter()
    this.#client = new acme.Client({
      directoryUrl: config.directoryUrl,
      accountKey,
      ...(config.eab === undefined ? {} : { externalAccountBinding: { kid: config.eab.kid, hmacKey: config.eab.hmacKey } })
    })
  }

  /** A new account key: ECDSA P-256, as Caddy makes them. */
  static async newAccountKey (): Promise<string> { return (await acme.crypto.createPrivateEcdsaKey('P-256')).toString() }

  /** One certificate for `name` (its key made here, ECDSA P-256): the account is registered on first use. */
  async order (name: string, hooks: ChallengeHooks): Promise<StoredCertificate> {
    const startedMs = systemClock.wallNow()
    try {
      return await this.#order(name, hooks)
    } catch (error) {
      const cause = await explained(error, this.#config)
      // The CA said when to ask again during this order (its clock is the wall clock).
      const askAgain = askAgainAt.get(new URL(this.#config.directoryUrl).origin)
      if (askAgain !== undefined && askAgain.seenMs >= startedMs && askAgain.untilMs > systemClock.wallNow()) {
        throw new AcmeError(cause.message, { cause, retryAfterMs: askAgain.untilMs - systemClock.wallNow() })
      }
      throw new AcmeError(cause.message, { cause })
    }
  }

  async #order (name: string, hooks: ChallengeHooks): Promise<StoredCertificate> {
    const [key, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, await acme.crypto.createPrivateEcdsaKey('P-256'))
    const challenges = new Map<string, PendingChallenge>()
    const cert = await this.#client.auto({
      csr,
      ...(this.#config.email === undefined ? {} : { email: this.#config.email }),
      termsOfServiceAgreed: true,
      challengePriority: [...this.#config.challenges],
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const pending = await pendingChallenge(authz, challenge.type, 'token' in challenge ? challenge.token : '', keyAuthorization, this.#config.challenges)
        challenges.set(challengeKey(authz.identifier.value, challenge.type), pending)
        await hooks.put(pending)
      },
      challengeRemoveFn: async (authz, challenge) => {
        const pending = challenges.get(challengeKey(authz.identifier.value, challenge.type))
        if (pending !== undefined) hooks.remove(pending)
      }
    })
    return { cert, key: key.toString() }
  }
}

function challengeKey (name: string, type: string): string { return `${name}\u0000${type}` }

/**
 * acme-client's retry settings on its axios instance (its README shows
 * `axios.defaults.acmeSettings` for the challenge ports; the type does not
 * declare it). test/unit/acme/acme-ca.test.ts fails if the field goes.
 */
export function acmeSettings (): { retryMaxAttempts: number, retryDefaultDelay: number } {
  const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number, retryDefaultDelay: number } }).acmeSettings
  if (settings === undefined || typeof settings.retryMaxAttempts !== 'number') throw new Error('acme-client no longer has axios.defaults.acmeSettings')
  return settings
}

/** The last Retry-After each CA origin sent with a 429 or 503: when it may be asked again. */
const askAgainAt = new Map<string, { readonly seenMs: number, readonly untilMs: number }>()
let isWatchingRetryAfter = false

/** Notes every CA answer's Retry-After (429 rateLimited, 503), on acme-client's one axios instance. */
function watchRetryAfter (): void {
  if (isWatchingRetryAfter) return
  isWatchingRetryAfter = true
  type Answer = { status: number, headers: Record<string, unknown>, config: { url?: string } } | undefined
  const note = (response: Answer): void => {
    if (response === undefined || (response.status !== 429 && response.status !== 503)) return
    const nowMs = systemClock.wallNow()
    if (response.config.url === undefined) return
    const origin = new URL(response.config.url).origin
    const waitMs = retryAfterMs(response.headers['retry-after'], nowMs)
    // The latest answer counts: one without a Retry-After understood sets no wait.
    if (waitMs === undefined) askAgainAt.delete(origin)
    else askAgainAt.set(origin, { seenMs: nowMs, untilMs: nowMs + waitMs })
  }
  acme.axios.interceptors.response.use((response) => {
    note(response as Answer)
    return response
  }, (error: { response?: Answer }) => {
    note(error.response)
    throw error
  })
}

/** One request to the CA; an order is several, each bounded by this. */
const REQUEST_TIMEOUT_MS = 30_000

/**
 * acme-client loses a network error's cause once its retries are spent (it
 * reads a response that is not there: "Cannot read properties of undefined").
 * The directory is asked once more here, so the error says what an operator
 * can act on: refused, timed out, a certificate not trusted (directoryCa).
 */
async function explained (error: unknown, config: AcmeConfig): Promise<Error> {
  if (!(error instanceof TypeError)) return error instanceof Error ? error : new Error(String(error))
  // Node's own client, not acme-client's axios (whose interceptor would lose the cause again).
  const probe = await new Promise<{ status: number } | Error>((resolve) => {
    const agent = acme.axios.defaults.httpsAgent as Agent | undefined
    const request = (config.directoryUrl.startsWith('https:') ? httpsGet : nodeHttp.get)(config.directoryUrl, { timeout: 5000, ...(agent === undefined ? {} : { agent }) }, (response) => {
      response.resume()
      resolve({ status: response.statusCode ?? 0 })
    })
    request.on('timeout', () => { request.destroy(Object.assign(new Error('no answer within 5 s'), { code: 'ETIMEDOUT' })) })
    request.on('error', (failure) => { resolve(failure) })
  })
  if (probe instanceof Error) {
    const code = (probe as NodeJS.ErrnoException).code
    return new Error(`cannot reach the ACME directory ${config.directoryUrl}${code === undefined ? '' : `: ${code}`} (${probe.message})`)
  }
  return new Error(`the ACME directory ${config.directoryUrl} answers HTTP ${probe.status}, yet the order failed without an answer (${error.message})`)
}

async function pendingChallenge (authz: acme.Authorization, type: string, token: string, keyAuthorization: string, allowed: readonly AcmeChallenge[]): Promise<PendingChallenge> {
  if (type === 'http-01' && allowed.includes('http-01')) return { type, token, keyAuthorization }
  if (type === 'tls-alpn-01' && allowed.includes('tls-alpn-01')) {
    const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization)
    return { type, name: authz.identifier.value, cert: cert.toString(), key: key.toString() }
  }
  // The CA offered none of tls.acme.challenges (dns-01 only, for a wildcard say).
  throw new Error(`the CA offered no challenge srvgate answers for ${authz.identifier.value} (offered ${type}; tls.acme.challenges: ${allowed.join(', ')})`)
}
