/**
 * A frontend's rateLimit: the control plane's exact buckets
 * (policy/rate-buckets.ts) and a worker's leases of them
 * (policy/rate-limits.ts), on an injected clock. Two workers share one
 * bucket: together they let through what one would, within the documented
 * bound.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RateBuckets } from '../../../src/policy/rate-buckets.js'
import { LEASE_MS, RateLimits } from '../../../src/policy/rate-limits.js'
import { ManualClock } from '../../../src/util/clock.js'
import { ErrorCode, ProxyError } from '../../../src/errors.js'
import type { RateLimitConfig } from '../../../src/config/types.js'

const limit = (requestsPerSecond: number, burst: number, maxKeys = 1000): RateLimitConfig => ({ requestsPerSecond, burst, key: { kind: 'client-ip' }, maxKeys, redis: undefined })

test('buckets: burst at once, then the rate; Retry-After until the next token; keys apart; the least recently seen key forgotten past maxKeys', () => {
  const buckets = new RateBuckets()
  const terms = { perSecond: 10, burst: 5, maxKeys: 2 }
  const rows: Array<[string, number, number, number, number]> = [
    // key, at ms, want, granted, retryAfterMs
    ['a', 0, 3, 3, 0],
    ['a', 0, 3, 2, 0],
    ['a', 0, 1, 0, 100],
    ['a', 50, 1, 0, 50],
    ['a', 100, 2, 1, 0],
    ['b', 100, 5, 5, 0],
    ['a', 1000, 9, 5, 0],
    ['c', 1000, 1, 1, 0]
  ]
  for (const [key, at, want, granted, retryAfterMs] of rows) {
    assert.deepEqual(buckets.take('fe', key, want, terms, at), { granted, retryAfterMs }, `${key}@${at}`)
  }
  assert.equal(buckets.keysOf('fe'), 2)
  // b was the least recently seen: forgotten, it comes back full.
  assert.deepEqual(buckets.take('fe', 'b', 5, terms, 1000), { granted: 5, retryAfterMs: 0 })
})

test('two workers leasing one bucket: 100 quick requests at 10/s burst 10 let 10 through, not 20; a refusal is remembered until the next token (no asking); 429 with Retry-After', async () => {
  const clock = new ManualClock()
  const buckets = new RateBuckets()
  let asked = 0
  const ask = (frontend: string, key: string, want: number, terms: { perSecond: number, burst: number, maxKeys: number }) => {
    asked++
    return buckets.take(frontend, key, want, terms, clock.now())
  }
  const workers = [new RateLimits(ask, clock), new RateLimits(ask, clock)]
  let through = 0
  const refusals: ProxyError[] = []
  for (let index = 0; index < 100; index++) {
    const outcome = await (workers[index % 2] as RateLimits).take('api', limit(10, 10), '203.0.113.9')
    if (outcome === undefined) through++
    else refusals.push(outcome)
  }
  assert.equal(through, 10)
  assert.ok(refusals.every((refusal) => refusal.code === ErrorCode.RATE_LIMITED && refusal.retryAfterS === 1))
  assert.ok(asked <= 12, `refusals remembered: ${asked} asks`)
  clock.advance(100)
  assert.equal(await workers[0]?.take('api', limit(10, 10), '203.0.113.9'), undefined, 'a token 100 ms later')
  assert.ok((await workers[1]?.take('api', limit(10, 10), '203.0.113.9')) instanceof ProxyError)
  assert.equal(await workers[1]?.take('api', limit(10, 10), '198.51.100.1'), undefined, 'another key has its own bucket')
})

test('leases: at high rates a worker takes rate/20 (at most burst/4) at once and spends them without asking; unspent ones end with the lease', async () => {
  const clock = new ManualClock()
  const buckets = new RateBuckets()
  let asked = 0
  const worker = new RateLimits((frontend, key, want, terms) => {
    asked++
    return buckets.take(frontend, key, want, terms, clock.now())
  }, clock)
  // 1000/s, burst 200: leases of 50.
  for (let index = 0; index < 100; index++) assert.equal(await worker.take('api', limit(1000, 200), 'k'), undefined)
  assert.equal(asked, 2)
  assert.equal(buckets.take('api', 'k', 1000, { perSecond: 1000, burst: 200, maxKeys: 10 }, clock.now()).granted, 100, 'the bucket gave away exactly 100')
  clock.advance(LEASE_MS + 1)
  // The buckets refilled; the old lease's leftovers (none here) are dropped, a new one asked.
  assert.equal(await worker.take('api', limit(1000, 200), 'k'), undefined)
  assert.equal(asked, 3)
  // A header's long value is held as a digest, still a key of its own.
  assert.equal(await worker.take('api', limit(1, 1), 'x'.repeat(5000)), undefined)
  assert.ok((await worker.take('api', limit(1, 1), 'x'.repeat(5000))) instanceof ProxyError)
  assert.equal(await worker.take('api', limit(1, 1), `${'x'.repeat(4999)}y`), undefined)
})
