/**
 * The DNS face's rate limit as timelines on a ManualClock: buckets per
 * source block (/24, /56, as BIND's RRL), a global ceiling on UDP answers,
 * refill, and limits read on each query.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../../src/util/clock.js'
import { SourceRateLimit, type RateLimits, type RateVerdict } from '../../../src/dns-face/rate-limit.js'

function limiter (limits: RateLimits): { clock: ManualClock, limit: SourceRateLimit, set: (next: RateLimits) => void } {
  const clock = new ManualClock()
  let current = limits
  return { clock, limit: new SourceRateLimit(clock, () => current), set: (next) => { current = next } }
}

test('sources of one /24 share one bucket; another /24 has its own', () => {
  const { limit } = limiter({ perSecond: 1, burst: 5, globalPerSecond: 1000 })
  const sources = ['192.0.2.1', '192.0.2.1', '192.0.2.77', '192.0.2.200', '192.0.2.254', '192.0.2.9', '192.0.3.1', '::ffff:192.0.2.5']
  assert.deepEqual(sources.map((source) => limit.take(source, true)), ['answer', 'answer', 'answer', 'answer', 'answer', 'source', 'answer', 'source'])
})

test('IPv6 sources of one /56 share one bucket; the next /56 has its own', () => {
  const { limit } = limiter({ perSecond: 1, burst: 2, globalPerSecond: 1000 })
  const sources = ['2001:db8:0:100::1', '2001:db8:0:1ff:ffff::9', '2001:db8:0:1ab::abcd', '2001:db8:0:200::1']
  assert.deepEqual(sources.map((source) => limit.take(source, true)), ['answer', 'answer', 'source', 'answer'])
})

test('a sender cycling through more blocks than are remembered (20,000 /24s) gets globalPerSecond answers a second, not a fresh burst each', () => {
  const { clock, limit } = limiter({ perSecond: 500, burst: 1000, globalPerSecond: 2000 })
  const source = (index: number): string => `10.${(index >> 8) & 255}.${index & 255}.1`
  const round = (count: number, offset: number): number => {
    let answered = 0
    for (let index = 0; index < count; index++) if (limit.take(source(offset + index), true) === 'answer') answered++
    return answered
  }
  // Timeline: [step, advance ms, queries, answers expected]
  const timeline: Array<[string, number, number, number]> = [
    ['a burst of 20,000 new blocks', 0, 20_000, 2000],
    ['the same instant again', 0, 5000, 0],
    ['half a second later', 500, 20_000, 1000],
    ['a whole second later: one second\'s worth, never more', 5000, 20_000, 2000]
  ]
  let offset = 0
  for (const [step, advanceMs, queries, expected] of timeline) {
    clock.advance(advanceMs)
    assert.equal(round(queries, offset), expected, step)
    offset += queries
  }
})

test('TCP stays outside the global ceiling (its sources cannot be spoofed; dns.tcp bounds it) but not outside its source\'s bucket', () => {
  const { limit } = limiter({ perSecond: 1, burst: 2, globalPerSecond: 3 })
  const udp = ['10.0.0.1', '10.0.1.1', '10.0.2.1', '10.0.3.1'].map((source) => limit.take(source, true))
  assert.deepEqual(udp, ['answer', 'answer', 'answer', 'global'])
  assert.deepEqual(['10.0.9.1', '10.0.9.2', '10.0.9.3'].map((source) => limit.take(source, false)), ['answer', 'answer', 'source'])
})

test('a query refused by one limit spends no token of the other', () => {
  const { limit } = limiter({ perSecond: 1, burst: 1, globalPerSecond: 1 })
  assert.equal(limit.take('10.0.0.1', true), 'answer')
  assert.equal(limit.take('10.0.0.2', true), 'source', 'the block\'s bucket is empty: the global token stays')
  assert.equal(limit.take('10.0.1.1', true), 'global')
  assert.equal(limit.take('10.0.1.1', false), 'answer', 'the global refusal spent none of 10.0.1.0/24\'s tokens')
})

test('tokens come back at perSecond up to burst; a reload\'s limits apply to the next query', () => {
  const { clock, limit, set } = limiter({ perSecond: 10, burst: 3, globalPerSecond: 1000 })
  const take = (count: number): RateVerdict[] => Array.from({ length: count }, () => limit.take('192.0.2.1', true))
  assert.deepEqual(take(4), ['answer', 'answer', 'answer', 'source'])
  clock.advance(100)
  assert.deepEqual(take(2), ['answer', 'source'], 'one token per 100 ms')
  clock.advance(10_000)
  assert.deepEqual(take(4), ['answer', 'answer', 'answer', 'source'], 'never more than burst')
  set({ perSecond: 10, burst: 3, globalPerSecond: 1 })
  clock.advance(1000)
  assert.deepEqual(take(2), ['answer', 'global'], 'the global ceiling lowered by a reload')
})

test('perAddress (TCP): each address has its own bucket, neighbours in its /24 spend none of it', () => {
  const clock = new ManualClock()
  const limit = new SourceRateLimit(clock, () => ({ perSecond: 1, burst: 2, globalPerSecond: 1000 }), { perAddress: true })
  assert.equal(limit.take('192.0.2.1', false), 'answer')
  assert.equal(limit.take('192.0.2.1', false), 'answer')
  assert.equal(limit.take('192.0.2.1', false), 'source')
  assert.equal(limit.take('192.0.2.2', false), 'answer', 'a neighbour has its own burst')
})
