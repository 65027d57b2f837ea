import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../../src/util/clock.js'
import { TokenBucket } from '../../../src/util/token-bucket.js'

test('token bucket: burst at once, then perSecond; the wait for the next token; never more than burst saved up', () => {
  const clock = new ManualClock()
  const bucket = new TokenBucket(clock, { perSecond: 4, burst: 2 })
  // Timeline: [advance ms, take() results, waitMs after].
  const timeline: Array<[number, boolean[], number]> = [
    [0, [true, true, false], 250],
    [100, [false], 150],
    [150, [true, false], 250],
    [250, [true, false], 250],
    [10_000, [true, true, false], 250]
  ]
  for (const [advanceMs, takes, waitMs] of timeline) {
    clock.advance(advanceMs)
    assert.deepEqual(takes.map(() => bucket.take()), takes, `after ${advanceMs} ms`)
    assert.equal(bucket.waitMs(), waitMs, `wait after ${advanceMs} ms`)
  }
})

test('token bucket: limits read on each call (a reload changes them at once)', () => {
  const clock = new ManualClock()
  let limits = { perSecond: 1, burst: 1 }
  const bucket = new TokenBucket(clock, () => limits)
  assert.equal(bucket.take(), true)
  assert.equal(bucket.take(), false)
  assert.equal(bucket.waitMs(), 1000)
  limits = { perSecond: 10, burst: 5 }
  assert.equal(bucket.waitMs(), 100)
  clock.advance(1000)
  assert.deepEqual(Array.from({ length: 6 }, () => bucket.take()), [true, true, true, true, true, false])
})
