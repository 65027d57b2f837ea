import { createSecureContext, type SecureContext } from 'node:tls'

/**
 * The ACME challenges under way, as the control plane sends them to every
 * data plane before it tells the CA to validate: http-01 tokens (RFC 8555
 * §8.3) and tls-alpn-01 certificates (RFC 8737), PEM text.
 */
export type ChallengeSet = {
  readonly http: ReadonlyArray<{ readonly token: string, readonly keyAuthorization: string }>
  readonly alpn: ReadonlyArray<{ readonly name: string, readonly cert: string, readonly key: string }>
}

export const NO_CHALLENGES: ChallengeSet = { http: [], alpn: [] }

/** What the control plane finds for a challenge this data plane does not hold (storage.redis). */
export type ChallengeLookup = (type: 'http-01' | 'tls-alpn-01', key: string) => Promise<{ readonly keyAuthorization?: string, readonly cert?: string, readonly key?: string } | undefined>

/** An ACME token: base64url (RFC 8555 §8.1), bounded. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/
/** Found challenges kept at most (the oldest forgotten first): a flood of lookups cannot grow them. */
const MAX_FOUND = 256

function remember<V> (map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_FOUND) map.delete(map.keys().next().value as string)
  map.set(key, value)
}

/** The ALPN protocol a CA's TLS-ALPN-01 validation offers, and nothing else (RFC 8737 §3). */
export const ACME_TLS_ALPN = 'acme-tls/1'

/**
 * What a data plane answers the CA with: the key authorization for an
 * http-01 token on the plain listener, the challenge certificate for a
 * tls-alpn-01 handshake on the HTTPS one. Replaced whole by each set (the
 * control plane sends every challenge under way each time).
 */
export class AcmeAnswers {
  #tokens: ReadonlyMap<string, string> = new Map()
  #alpn: ReadonlyMap<string, SecureContext> = new Map()
  /** Challenges of other replicas found through the control plane (storage.redis), until the next set. */
  readonly #foundTokens = new Map<string, string>()
  readonly #foundAlpn = new Map<string, SecureContext>()
  readonly #lookup: ChallengeLookup | undefined

  /** `lookup`: with shared storage, a challenge this process does not hold is asked for (another replica's order). */
  constructor (lookup?: ChallengeLookup) { this.#lookup = lookup }

  use (set: ChallengeSet): void {
    this.#tokens = new Map(set.http.map(({ token, keyAuthorization }) => [token, keyAuthorization]))
    this.#alpn = new Map(set.alpn.map(({ name, cert, key }) => [name.toLowerCase(), createSecureContext({ cert, key })]))
    this.#foundTokens.clear()
    this.#foundAlpn.clear()
  }

  /** The body for GET /.well-known/acme-challenge/<token>; undefined: not a token of ours. */
  keyAuthorization (token: string): string | undefined { return this.#tokens.get(token) ?? this.#foundTokens.get(token) }

  /** The certificate for a tls-alpn-01 handshake naming `servername`; undefined: no challenge for it. */
  alpnContext (servername: string): SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '')
    return this.#alpn.get(name) ?? this.#foundAlpn.get(name)
  }

  /** Challenges not held here are looked for elsewhere (shared storage): the path and the handshake belong to srvgate. */
  get canLookup (): boolean { return this.#lookup !== undefined }

  /** An http-01 token of another replica's order; undefined: nobody's (or not a token at all). */
  async findKeyAuthorization (token: string): Promise<string | undefined> {
    const held = this.keyAuthorization(token)
    if (held !== undefined || this.#lookup === undefined || !TOKEN.test(token)) return held
    const found = await this.#lookup('http-01', token).catch(() => undefined)
    if (found?.keyAuthorization === undefined) return undefined
    remember(this.#foundTokens, token, found.keyAuthorization)
    return found.keyAuthorization
  }

  /** A tls-alpn-01 certificate of another replica's order. */
  async findAlpnContext (servername: string): Promise<SecureContext | undefined> {
    const held = this.alpnContext(servername)
    const name = servername.toLowerCase().replace(/\.$/, '')
    if (held !== undefined || this.#lookup === undefined) return held
    const found = await this.#lookup('tls-alpn-01', name).catch(() => undefined)
    if (found?.cert === undefined || found.key === undefined) return undefined
    const context = createSecureContext({ cert: found.cert, key: found.key })
    remember(this.#foundAlpn, name, context)
    return context
  }

  get isEmpty (): boolean { return this.#tokens.size === 0 && this.#alpn.size === 0 }
}
