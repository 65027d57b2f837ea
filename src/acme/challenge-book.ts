import type { ChallengeSet } from '../tls/acme-answers.js'
import type { PendingChallenge } from './acme-ca.js'
import type { AcmeStorage } from './storage.js'

/**
 * The challenges this process's orders have under way: put before the CA is
 * told to validate (in storage first, for another replica the validation may
 * reach, then in every data plane), removed when the order is done with them.
 */
export class ChallengeBook {
  readonly #challenges = new Map<string, PendingChallenge>()
  readonly #storage: () => AcmeStorage
  readonly #toDataPlanes: (set: ChallengeSet) => Promise<void>

  constructor (storage: () => AcmeStorage, toDataPlanes: (set: ChallengeSet) => Promise<void>) {
    this.#storage = storage
    this.#toDataPlanes = toDataPlanes
  }

  readonly put = async (challenge: PendingChallenge): Promise<void> => {
    this.#challenges.set(keyOf(challenge), challenge)
    // Shared first (storage.redis): the validation may reach another replica, which looks it up there.
    await this.#storage().putChallenge(challenge)
    await this.#toDataPlanes(this.#set())
  }

  readonly remove = (challenge: PendingChallenge): void => {
    if (!this.#challenges.delete(keyOf(challenge))) return
    this.#storage().removeChallenge(challenge).catch(() => {})
    this.#toDataPlanes(this.#set()).catch(() => {})
  }

  /** This process's own, or the one another replica shared in storage. */
  async find (type: PendingChallenge['type'], key: string): Promise<PendingChallenge | undefined> {
    const own = this.#challenges.get(`${type}\u0000${key}`)
    if (own !== undefined) return own
    return await this.#storage().findChallenge(type, key).catch(() => undefined)
  }

  #set (): ChallengeSet {
    const http: Array<ChallengeSet['http'][number]> = []
    const alpn: Array<ChallengeSet['alpn'][number]> = []
    for (const challenge of this.#challenges.values()) {
      if (challenge.type === 'http-01') http.push({ token: challenge.token, keyAuthorization: challenge.keyAuthorization })
      else alpn.push({ name: challenge.name, cert: challenge.cert, key: challenge.key })
    }
    return { http, alpn }
  }
}

function keyOf (challenge: PendingChallenge): string {
  return challenge.type === 'http-01' ? `http-01\u0000${challenge.token}` : `tls-alpn-01\u0000${challenge.name}`
}
