import { Redis } from 'ioredis'
import type { Grant } from './rate-buckets.js'
import { within, type Clock } from '../util/clock.js'

/**
 * A token bucket in Redis, atomic in one script (one round trip a request):
 * the same rule as rate-buckets.ts, on Redis's clock (TIME), so every
 * replica and worker spends from one bucket. The bucket's hash expires once
 * it would be full again. Returns {allowed, retryAfterMs}.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(held[1])
local at = tonumber(held[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry}
`

/** Takes sent and not answered at once (a healthy Redis answers in well under a millisecond: a few at 10k requests a second); past it a take is not sent, this gateway decides. */
export const MAX_IN_FLIGHT = 64
/** After a take failed (timeout, error), Redis is left alone this long: a stalled Redis gets no backlog to replay. */
const BACKOFF_MS = 1000

type WithTake = Redis & { srvgateTake: (key: string, perSecond: number, burst: number) => Promise<[number, number]> }

/**
 * rateLimit.store.redis: the one door to ioredis for rate limits (loaded by
 * import() only when a frontend names a store). No offline queue and no
 * retries of a command: while Redis is away a take fails at once, and the
 * caller decides locally (fail open). Reconnects in the background.
 */
export class RedisRates {
  readonly #client: WithTake
  /** Settles once the first connection is up (or failed): the first requests wait for it, within the timeout, rather than be decided locally. */
  readonly #firstConnect: Promise<void>
  readonly #timeoutMs: number
  readonly #clock: Clock
  #wasReady = false
  #inFlight = 0
  #skipUntilMs = 0

  constructor (url: string, timeoutMs: number, clock: Clock) {
    this.#timeoutMs = timeoutMs
    this.#clock = clock
    this.#client = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: 2000,
      // Reconnect, at most a second apart, for as long as the process runs.
      retryStrategy: (times) => Math.min(times * 100, 1000)
    }) as WithTake
    this.#client.defineCommand('srvgateTake', { numberOfKeys: 1, lua: TAKE })
    // Errors are the callers' (each failed take); the connection's own are not worth a crash.
    this.#client.on('error', () => {})
    this.#firstConnect = new Promise<void>((resolve) => {
      this.#client.once('ready', () => {
        this.#wasReady = true
        resolve()
      })
      this.#client.once('error', () => { resolve() })
    })
  }

  /** One token of `key`, or when the next comes; rejects when Redis cannot answer within the timeout. */
  async take (key: string, perSecond: number, burst: number): Promise<Grant> {
    if (!this.#wasReady) await within(this.#clock, this.#firstConnect, this.#timeoutMs, { unref: true })
    // ioredis's commandTimeout fails the caller but leaves the command queued: a stalled Redis would
    // gather every request's script (memory) and run them all when it wakes (buckets spent twice).
    // So: a bound on what waits, and a pause after a failure.
    if (this.#clock.now() < this.#skipUntilMs) throw new Error('Redis failed a take less than 1 s ago: not asked')
    if (this.#inFlight >= MAX_IN_FLIGHT) throw new Error(`${MAX_IN_FLIGHT} takes already wait for Redis`)
    this.#inFlight++
    try {
      const [allowed, retryAfterMs] = await this.#client.srvgateTake(key, perSecond, burst)
      return { granted: allowed, retryAfterMs }
    } catch (error) {
      this.#skipUntilMs = this.#clock.now() + BACKOFF_MS
      throw error
    } finally {
      this.#inFlight--
    }
  }

  close (): void { this.#client.disconnect() }
}
