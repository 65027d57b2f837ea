/**
 * prom-client's private Histogram storage, on real Histograms: the shape
 * admin/prom-client-internals.ts reads. After upgrading prom-client, this
 * file says whether HistogramTally still counts into what prom-client reads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Histogram, Registry } from 'prom-client'
import { addToSeries, histogramUpperBounds, seriesStore, storedSeries } from '../../../src/admin/prom-client-internals.js'
import { ErrorCode, LibraryShapeError } from '../../../src/errors.js'
import { sourceFiles } from '../../helpers/source-files.js'

const BUCKETS = [0.001, 0.01, 0.1, 1]

function histogram (): { registry: Registry, histogram: Histogram<'backend' | 'outcome'> } {
  const registry = new Registry()
  return { registry, histogram: new Histogram({ name: 'latency_seconds', help: 'h', labelNames: ['backend', 'outcome'], buckets: BUCKETS, registers: [registry] }) }
}

test('upperBounds: the buckets option, as given (the tally searches them in the order prom-client does)', () => {
  assert.deepEqual(histogramUpperBounds(histogram().histogram), BUCKETS)
  assert.deepEqual(histogramUpperBounds(new Histogram({ name: 'unsorted', help: 'h', buckets: [1, 0.1], registers: [] })), [1, 0.1])
})

test('hashMap: the series prom-client\'s public observe() writes, per bucket (not cumulative), with sum and count; what its public get() reads', async () => {
  const { histogram: latency } = histogram()
  latency.observe({ backend: 'web', outcome: 'success' }, 0.0078125)
  latency.observe({ backend: 'web', outcome: 'success' }, 0.5)
  latency.observe({ backend: 'web', outcome: 'success' }, 3)
  latency.observe({ backend: 'api', outcome: 'success' }, 0.001)
  const web = storedSeries(latency, { backend: 'web', outcome: 'success' })
  assert.deepEqual(web.labels, { backend: 'web', outcome: 'success' })
  assert.deepEqual({ ...web.bucketValues }, { 0.001: 0, 0.01: 1, 0.1: 0, 1: 1 })
  assert.equal(web.count, 3)
  assert.equal(web.sum, 3.5078125)
  assert.equal(storedSeries(latency, { backend: 'api', outcome: 'success' }).bucketValues[0.001], 1)
  // (Sums of powers of two: exact in floating point.) Added to the stored series, read by prom-client's public get(): cumulative buckets, +Inf, sum, count.
  addToSeries(web, BUCKETS, [2, 1, 0, 0], 0.015625, 3)
  const values = (await latency.get()).values.filter((value) => (value.labels as Record<string, unknown>).backend === 'web')
  assert.deepEqual(values.map((value) => [value.metricName, (value.labels as Record<string, unknown>).le, value.value]), [
    ['latency_seconds_bucket', 0.001, 2], ['latency_seconds_bucket', 0.01, 4], ['latency_seconds_bucket', 0.1, 4], ['latency_seconds_bucket', 1, 5],
    ['latency_seconds_bucket', '+Inf', 6], ['latency_seconds_sum', undefined, 3.5234375], ['latency_seconds_count', undefined, 6]
  ])
})

test('a series prom-client does not keep yet is made with zero(), and found again, not made twice', async () => {
  const { histogram: latency } = histogram()
  const made = storedSeries(latency, { backend: 'web', outcome: 'timeout' })
  assert.deepEqual([made.count, made.sum, Object.values(made.bucketValues)], [0, 0, [0, 0, 0, 0]])
  made.count++
  assert.equal(storedSeries(latency, { backend: 'web', outcome: 'timeout' }), made)
  assert.equal((await latency.get()).values.filter((value) => value.metricName === 'latency_seconds_count').length, 1)
})

test('reset() puts a new store in place: a series found before it is no longer read', () => {
  const { registry, histogram: latency } = histogram()
  const before = seriesStore(latency)
  const series = storedSeries(latency, { backend: 'web', outcome: 'success' })
  assert.equal(seriesStore(latency), before, 'the same store while nothing resets it')
  registry.resetMetrics()
  assert.notEqual(seriesStore(latency), before)
  assert.notEqual(storedSeries(latency, { backend: 'web', outcome: 'success' }), series)
})

test('another shape throws LibraryShapeError (SG_ERR_LIBRARY_SHAPE) instead of counting into nothing', () => {
  const renamed = histogram().histogram
  Reflect.set(renamed, 'hashMap', undefined)
  assert.throws(() => seriesStore(renamed), (error: unknown) => error instanceof LibraryShapeError && error.code === ErrorCode.LIBRARY_SHAPE && error.library === 'prom-client')
  const reshaped = histogram().histogram
  reshaped.observe({ backend: 'web', outcome: 'success' }, 0.5)
  Reflect.set(reshaped, 'hashMap', { key: { labels: { backend: 'web', outcome: 'success' }, buckets: new Map(), sum: 0.5, count: 1 } })
  assert.throws(() => storedSeries(reshaped, { backend: 'web', outcome: 'success' }), LibraryShapeError)
  const unbounded = histogram().histogram
  Reflect.set(unbounded, 'upperBounds', undefined)
  assert.throws(() => histogramUpperBounds(unbounded), LibraryShapeError)
})

test('no other module of src/ names prom-client\'s private fields: they have one door', () => {
  const readers = sourceFiles('src').filter((file) => /\b(hashMap|upperBounds|bucketValues)\b/.test(readFileSync(file, 'utf8')))
  assert.deepEqual(readers, [join('src', 'admin', 'prom-client-internals.ts')])
})
