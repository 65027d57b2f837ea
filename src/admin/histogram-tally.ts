import type { Histogram } from 'prom-client'
import { addToSeries, histogramUpperBounds, seriesStore, storedSeries, type StoredSeries } from './prom-client-internals.js'

/**
 * Observations of one labelled series of a prom-client Histogram, counted
 * per bucket here and added to prom-client's own series when the histogram
 * is read (from its `collect` hook: /metrics, and each worker's
 * getMetricsAsJSON() for the cluster's aggregation). prom-client's
 * `observe` validates the labels, builds their key string, looks it up and
 * adds to a bucket keyed by a float on every call; here an observation is a
 * bucket index and three additions (what that saves a request:
 * prom-client-internals.ts). The buckets, the exposition, the aggregation
 * and the series stay prom-client's; its private storage is reached only
 * through prom-client-internals.ts, and test/unit/admin/histogram-tally.test.ts
 * compares the result with prom-client's own `observe`.
 */
export class HistogramTally<Label extends string> {
  readonly #histogram: Histogram<Label>
  readonly #labels: Partial<Record<Label, string>>
  readonly #bounds: readonly number[]
  /** Observations per bucket (not cumulative), since the last flush; above the last bound: in #count only. */
  readonly #counts: Float64Array
  #sum = 0
  #count = 0
  #series: StoredSeries | undefined
  #seriesIn: object | undefined

  constructor (histogram: Histogram<Label>, labels: Partial<Record<Label, string>>) {
    this.#histogram = histogram
    this.#labels = labels
    this.#bounds = histogramUpperBounds(histogram)
    this.#counts = new Float64Array(this.#bounds.length)
  }

  observe (value: number): void {
    // prom-client throws on these; a duration never is one, and the sum must not become NaN.
    if (!Number.isFinite(value)) return
    const bounds = this.#bounds
    let index = 0
    while (index < bounds.length && value > (bounds[index] as number)) index++
    if (index < bounds.length) (this.#counts[index] as number)++
    this.#sum += value
    this.#count++
  }

  /** Add what was observed since the last flush to prom-client's series. */
  flush (): void {
    if (this.#count === 0) return
    addToSeries(this.#seriesNow(), this.#bounds, this.#counts, this.#sum, this.#count)
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }

  /** prom-client's series for these labels: found once, found again after a reset() (which replaces its store). */
  #seriesNow (): StoredSeries {
    const store = seriesStore(this.#histogram)
    if (this.#series !== undefined && this.#seriesIn === store) return this.#series
    this.#series = storedSeries(this.#histogram, this.#labels)
    this.#seriesIn = store
    return this.#series
  }
}
