import type { Histogram } from 'prom-client'
import { LibraryShapeError } from '../errors.js'

/**
 * prom-client's one door for what it keeps private: a Histogram's bucket
 * bounds (`upperBounds`) and its labelled series (`hashMap`), as prom-client
 * 15 stores them (lib/histogram.js, createBaseValues). Only HistogramTally
 * (histogram-tally.ts) comes here, and only when the registry is read, never
 * per request.
 *
 * (HistogramTally keeps its counts; reads and additions to prom-client's
 * series happen here.)
 *
 * Why: prom-client's public `observe`, even through a bound child, validates
 * the labels, builds their key string and looks it up on every call. The two
 * per-request histograms observed that way cost more than through the tally
 * (2026-12-03, a 2-core box under load 10-26, 8 runs each, best of 7
 * within a run): 1.7-5.7 µs a request more in a tight loop (median 4.0), and
 * 3.0-13.4 µs (median 5) among a simulated request's allocations; 4.2 µs a
 * request in the pinned proxy benchmark (57.5 → 53.3 µs, docs/BENCHMARKS.md,
 * 2026-11-30). Over the 2 µs a private field must save to stay.
 *
 * Every read is checked: a field that is gone or of another shape throws
 * LibraryShapeError instead of counting into nothing, and
 * test/unit/admin/prom-client-internals.test.ts fails on a real Histogram
 * first (upgrading prom-client: run it).
 */

/** One labelled series: counts per bucket (not cumulative) keyed by upper bound, above the last bound in `count` only. */
export type StoredSeries = { readonly labels: object, readonly bucketValues: Record<number, number>, sum: number, count: number }

const LIBRARY = 'prom-client'

/** The histogram's bucket upper bounds: its `buckets` option as given (prom-client froze it; srvgate's are ascending). */
export function histogramUpperBounds (histogram: Histogram<string>): readonly number[] {
  const bounds: unknown = Reflect.get(histogram, 'upperBounds')
  if (!Array.isArray(bounds) || !bounds.every((bound): bound is number => typeof bound === 'number')) throw new LibraryShapeError(LIBRARY, 'Histogram#upperBounds is not an array of numbers')
  return bounds
}

/**
 * The object a histogram's series live in. reset() (the registry's
 * resetMetrics()) puts a new one in its place: a series found before is the
 * one prom-client reads only while this object is the same.
 */
export function seriesStore (histogram: Histogram<string>): object {
  const store: unknown = Reflect.get(histogram, 'hashMap')
  if (typeof store !== 'object' || store === null) throw new LibraryShapeError(LIBRARY, 'Histogram#hashMap is not an object')
  return store
}

/** prom-client's series for exactly these labels, made (all zero) with its public zero() when it keeps none. */
export function storedSeries (histogram: Histogram<string>, labels: Partial<Record<string, string>>): StoredSeries {
  const bounds = histogramUpperBounds(histogram)
  const found = findSeries(seriesStore(histogram), labels, bounds)
  if (found !== undefined) return found
  histogram.zero(labels)
  const made = findSeries(seriesStore(histogram), labels, bounds)
  if (made === undefined) throw new LibraryShapeError(LIBRARY, `Histogram#hashMap keeps no series for ${JSON.stringify(labels)} after zero()`)
  return made
}

/** Adds counts per bucket (not cumulative, one per upper bound in order), a sum and a count to a series. */
export function addToSeries (series: StoredSeries, bounds: readonly number[], counts: ArrayLike<number>, sum: number, count: number): void {
  for (let index = 0; index < bounds.length; index++) {
    const added = counts[index] as number
    if (added === 0) continue
    const bound = bounds[index] as number
    series.bucketValues[bound] = (series.bucketValues[bound] ?? 0) + added
  }
  series.sum += sum
  series.count += count
}

function findSeries (store: object, labels: object, bounds: readonly number[]): StoredSeries | undefined {
  const wanted = Object.entries(labels)
  const entries: unknown[] = Object.values(store)
  for (const series of entries) {
    if (!isStoredSeries(series, bounds)) throw new LibraryShapeError(LIBRARY, 'a Histogram#hashMap entry is not { labels, bucketValues (a number per upper bound), sum, count }')
    const have = series.labels as Record<string, unknown>
    if (Object.keys(have).length === wanted.length && wanted.every(([name, value]) => have[name] === value)) return series
  }
  return undefined
}

function isStoredSeries (value: unknown, bounds: readonly number[]): value is StoredSeries {
  if (typeof value !== 'object' || value === null) return false
  const { labels, bucketValues, sum, count } = value as Partial<Record<keyof StoredSeries, unknown>>
  return typeof labels === 'object' && labels !== null &&
    typeof bucketValues === 'object' && bucketValues !== null &&
    bounds.every((bound) => typeof (bucketValues as Record<number, unknown>)[bound] === 'number') &&
    typeof sum === 'number' && typeof count === 'number'
}
