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

  use (set: ChallengeSet): void {
    this.#tokens = new Map(set.http.map(({ token, keyAuthorization }) => [token, keyAuthorization]))
    this.#alpn = new Map(set.alpn.map(({ name, cert, key }) => [name.toLowerCase(), createSecureContext({ cert, key })]))
  }

  /** The body for GET /.well-known/acme-challenge/<token>; undefined: not a token of ours. */
  keyAuthorization (token: string): string | undefined { return this.#tokens.get(token) }

  /** The certificate for a tls-alpn-01 handshake naming `servername`; undefined: no challenge for it. */
  alpnContext (servername: string): SecureContext | undefined { return this.#alpn.get(servername.toLowerCase().replace(/\.$/, '')) }

  get isEmpty (): boolean { return this.#tokens.size === 0 && this.#alpn.size === 0 }
}
