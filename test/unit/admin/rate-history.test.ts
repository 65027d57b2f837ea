/** The dashboard's five minutes kept by the control plane (admin/rate-history.ts), on an injected clock. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KEPT_MS, RateHistory, SAMPLE_EVERY_MS, type Totals } from '../../../src/admin/rate-history.js'
import { ManualClock } from '../../../src/util/clock.js'

test('rate history: a point every interval with rates against the sample before; a new backend starts at its second sample; five minutes kept', async () => {
  const clock = new ManualClock()
  let totals: Totals = { byBackend: new Map([['web-pr-1', { requests: 0, errors: 0 }]]), dnsQueries: 0 }
  const history = new RateHistory(clock, async () => totals)
  history.start()
  await clock.advanceAndSettle(SAMPLE_EVERY_MS)
  assert.equal(history.points.length, 0, 'the first sample is the baseline')
  totals = { byBackend: new Map([['web-pr-1', { requests: 50, errors: 5 }], ['web-pr-2', { requests: 10, errors: 0 }]]), dnsQueries: 10 }
  await clock.advanceAndSettle(SAMPLE_EVERY_MS)
  assert.deepEqual(history.points.map((point) => [point.dnsQueries, point.backends]), [[2, { 'web-pr-1': { requests: 10, errors: 1 } }]])
  totals = { byBackend: new Map([['web-pr-1', { requests: 60, errors: 5 }], ['web-pr-2', { requests: 35, errors: 0 }]]), dnsQueries: 10 }
  await clock.advanceAndSettle(SAMPLE_EVERY_MS)
  assert.deepEqual(history.points.at(-1)?.backends, { 'web-pr-1': { requests: 2, errors: 0 }, 'web-pr-2': { requests: 5, errors: 0 } })
  for (let index = 0; index < 70; index++) await clock.advanceAndSettle(SAMPLE_EVERY_MS)
  assert.equal(history.points.length, KEPT_MS / SAMPLE_EVERY_MS)
  history.stop()
  assert.equal(clock.pendingTimers, 0)
})
