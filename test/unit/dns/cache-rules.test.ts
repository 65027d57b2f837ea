/** The cache's rules, row by row: pure functions of times (dns/cache-rules.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { clampTtlMs, failureRecheck, graceRecheck, readAction, timesOfAnswer, timesOfNegative, type CachePolicy } from '../../../src/dns/cache-rules.js'

const POLICY: CachePolicy = { ttl: { minMs: 1000, maxMs: 30_000 }, staleForMs: 60_000, negativeTtlMs: 5000, emptyGraceMs: 2000 }

test('clamp: Consul\'s 0 becomes ttl.min, a day becomes ttl.max, in between is kept', () => {
  const rows: Array<[number | undefined, number]> = [[0, 1000], [undefined, 1000], [0.5, 1000], [7, 7000], [30, 30_000], [86_400, 30_000]]
  for (const [ttlSeconds, expected] of rows) assert.equal(clampTtlMs(ttlSeconds, POLICY.ttl), expected, String(ttlSeconds))
})

test('an answer: fresh for the clamped TTL, refreshed ahead at 70-80% of it depending on the jitter draw', () => {
  const rows: Array<[number, number, number]> = [[10, 0, 8000], [10, 0.5, 7500], [10, 0.999, 7001], [0, 0, 800]]
  for (const [ttlSeconds, jitter, refreshAfterMs] of rows) {
    const times = timesOfAnswer(100_000, ttlSeconds, POLICY, jitter)
    const ttlMs = clampTtlMs(ttlSeconds, POLICY.ttl)
    assert.deepEqual(times, { goodUntilMs: 100_000 + ttlMs, refreshAtMs: 100_000 + refreshAfterMs, expiresAtMs: 100_000 + ttlMs, ttlClampedMs: ttlMs }, `${ttlSeconds}s, jitter ${jitter}`)
  }
})

test('a negative answer is cached for negativeTtl', () => {
  assert.deepEqual(timesOfNegative(0, POLICY), { goodUntilMs: 5000, refreshAtMs: 5000, expiresAtMs: 5000, ttlClampedMs: 5000 })
})

test('emptyGrace: a known set survives empty answers until the grace ends, rechecked every ttl.min', () => {
  const rows: Array<[number, number, { recheckAtMs: number } | undefined]> = [
    [0, 0, { recheckAtMs: 1000 }],
    [1500, 0, { recheckAtMs: 2000 }],
    [2000, 0, undefined],
    [5000, 4000, { recheckAtMs: 6000 }]
  ]
  for (const [now, emptySince, expected] of rows) assert.deepEqual(graceRecheck(now, emptySince, POLICY), expected, `at ${now}, empty since ${emptySince}`)
})

test('a failure: the last good answer served stale within staleFor, rechecked every ttl.min; without one, the failure cached for ttl.min', () => {
  const rows: Array<[string, number, number | undefined, { recheckAtMs: number, isStale: boolean }]> = [
    ['just expired', 10_000, 10_000, { recheckAtMs: 11_000, isStale: true }],
    ['near the end of staleFor', 69_500, 10_000, { recheckAtMs: 70_000, isStale: true }],
    ['past staleFor', 70_000, 10_000, { recheckAtMs: 71_000, isStale: false }],
    ['nothing known', 5000, undefined, { recheckAtMs: 6000, isStale: false }]
  ]
  for (const [name, now, goodUntil, expected] of rows) assert.deepEqual(failureRecheck(now, goodUntil, POLICY), expected, name)
})

test('a read: served, served and refreshed ahead, or waiting for DNS', () => {
  const times = { refreshAtMs: 800, expiresAtMs: 1000 }
  const rows: Array<[number, string]> = [[0, 'serve'], [799, 'serve'], [800, 'serve-and-refresh'], [999, 'serve-and-refresh'], [1000, 'wait']]
  for (const [now, expected] of rows) assert.equal(readAction(now, times), expected, String(now))
})
