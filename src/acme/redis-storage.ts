import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Clock, Timer } from '../util/clock.js'
import { redactedUrl } from '../util/redacted-url.js'
import { folderOf, type AcmeStorage, type Lease, type SharedChallenge, type StoredCertificate } from './storage.js'

/** A lease outlives a replica that died mid-order by this much at most; renewed at a third of it while the order runs. */
const LEASE_MS = 60_000
/** A challenge's record outlives an order that never removed it by this much. */
const CHALLENGE_MS = 600_000

/** Extend the lease only while it is still ours (another replica may hold it after an expiry). */
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

export type RedisStorageEvents = {
  /** Redis answered again (true) or stopped answering (false): said once per change. */
  readonly reachable: (isUp: boolean) => void
}

/**
 * tls.acme.storage.redis: what several replicas behind one balancer share.
 * Keys under `prefix` + the directory's folder name: `:account`,
 * `:cert:NAME` (JSON of the chain and key), `:lock:NAME` (SET NX PX, a
 * random token, renewed while the order runs, deleted after by a script
 * that checks the token), `:challenge:http-01:TOKEN` and
 * `:challenge:tls-alpn-01:NAME`; `:saved` is the pub/sub channel a replica
 * publishes a name on after saving its certificate. The one door to ioredis.
 * Commands fail at once while Redis is unreachable (no offline queue): an
 * order waits for its retry, and handshakes never wait on Redis (the
 * certificates in hand are served from memory).
 */
export class RedisStorage implements AcmeStorage {
  readonly path: string
  readonly #client: Redis
  readonly #subscriber: Redis
  readonly #base: string
  readonly #clock: Clock
  readonly #listeners: Array<(name: string) => void> = []

  constructor (url: string, prefix: string, directoryUrl: string, clock: Clock, events: RedisStorageEvents) {
    this.#base = `${prefix}${folderOf(directoryUrl)}`
    this.#clock = clock
    this.path = `${redactedUrl(url, 'redis')} ${this.#base}`
    const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (times: number) => Math.min(times * 250, 2000) }
    this.#client = new Redis(url, options)
    this.#subscriber = new Redis(url, { ...options, enableOfflineQueue: true })
    let isUp: boolean | undefined
    const reachable = (up: boolean): void => {
      if (isUp === up) return
      isUp = up
      events.reachable(up)
    }
    this.#client.on('ready', () => { reachable(true) })
    this.#client.on('error', () => { reachable(false) })
    this.#client.on('end', () => { reachable(false) })
    this.#subscriber.on('error', () => {})
    this.#subscriber.on('message', (_channel: string, name: string) => { for (const listener of this.#listeners) listener(name) })
    void this.#subscriber.subscribe(`${this.#base}:saved`).catch(() => {})
  }

  readonly accountKey = async (create: () => Promise<string>): Promise<string> => {
    const key = `${this.#base}:account`
    const kept = await this.#client.get(key)
    if (kept !== null) return kept
    // Two replicas making one at once: the first written wins, both use it.
    await this.#client.set(key, await create(), 'NX')
    const account = await this.#client.get(key)
    if (account === null) throw new Error('the account key written to Redis is gone')
    return account
  }

  readonly load = async (name: string): Promise<StoredCertificate | undefined> => {
    const text = await this.#client.get(`${this.#base}:cert:${name}`)
    if (text === null) return undefined
    const parsed = JSON.parse(text) as Partial<StoredCertificate>
    if (typeof parsed.cert !== 'string' || typeof parsed.key !== 'string') throw new Error(`${this.#base}:cert:${name} is not a stored certificate`)
    return { cert: parsed.cert, key: parsed.key }
  }

  readonly save = async (name: string, certificate: StoredCertificate): Promise<void> => {
    await this.#client.set(`${this.#base}:cert:${name}`, JSON.stringify({ cert: certificate.cert, key: certificate.key }))
    await this.#client.publish(`${this.#base}:saved`, name)
  }

  readonly lock = async (name: string): Promise<Lease | undefined> => {
    const key = `${this.#base}:lock:${name}`
    const token = randomBytes(16).toString('hex')
    if (await this.#client.set(key, token, 'PX', LEASE_MS, 'NX') !== 'OK') return undefined
    let renewal: Timer | undefined
    const renew = (): void => {
      renewal = this.#clock.setTimeout(() => {
        this.#client.eval(RENEW, 1, key, token, LEASE_MS).catch(() => {})
        renew()
      }, LEASE_MS / 3, { unref: true })
    }
    renew()
    return {
      release: async () => {
        renewal?.cancel()
        await this.#client.eval(RELEASE, 1, key, token).catch(() => {})
      }
    }
  }

  readonly putChallenge = async (challenge: SharedChallenge): Promise<void> => {
    await this.#client.set(this.#challengeKey(challenge.type, challenge.type === 'http-01' ? challenge.token : challenge.name), JSON.stringify(challenge), 'PX', CHALLENGE_MS)
  }

  readonly removeChallenge = async (challenge: SharedChallenge): Promise<void> => {
    await this.#client.del(this.#challengeKey(challenge.type, challenge.type === 'http-01' ? challenge.token : challenge.name))
  }

  readonly findChallenge = async (type: SharedChallenge['type'], key: string): Promise<SharedChallenge | undefined> => {
    const text = await this.#client.get(this.#challengeKey(type, key))
    if (text === null) return undefined
    const challenge = JSON.parse(text) as SharedChallenge
    return challenge.type === type ? challenge : undefined
  }

  readonly onSaved = (listener: (name: string) => void): void => { this.#listeners.push(listener) }

  readonly close = async (): Promise<void> => {
    this.#client.disconnect()
    this.#subscriber.disconnect()
  }

  #challengeKey (type: SharedChallenge['type'], key: string): string { return `${this.#base}:challenge:${type}:${key}` }
}

