import type { Histogram } from 'prom-client'

/** How prom-client 15 stores one labelled series of a Histogram (lib/histogram.js, createBaseValues). */
type StoredSeries = { readonly labels: object, readonly bucketValues: Record<number, number>, sum: number, count: number }
type HistogramStorage = { readonly hashMap: Record<string, StoredSeries>, readonly upperBounds: readonly number[] }

/**
 * Observations of one labelled series of a prom-client Histogram, counted
 * per bucket here and added to prom-client's own series when the histogram
 * is read (from its `collect` hook: /metrics, and each worker's
 * getMetricsAsJSON() for the cluster's aggregation). prom-client's
 * `observe` validates the labels, builds their key string, looks it up and
 * adds to a bucket keyed by a float on every call: measured at ~4 µs a
 * request for the two per-request histograms (docs/BENCHMARKS.md,
 * 2026-11-30). Here an observation is a bucket index and three additions;
 * the buckets, the exposition, the aggregation and the series stay
 * prom-client's, and test/unit/admin/histogram-tally.test.ts fails if its
 * storage changes shape.
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
    this.#bounds = storageOf(histogram).upperBounds
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
    const series = this.#seriesNow()
    const bounds = this.#bounds
    for (let index = 0; index < bounds.length; index++) {
      const count = this.#counts[index] as number
      if (count === 0) continue
      series.bucketValues[bounds[index] as number] = (series.bucketValues[bounds[index] as number] ?? 0) + count
      this.#counts[index] = 0
    }
    series.sum += this.#sum
    series.count += this.#count
    this.#sum = 0
    this.#count = 0
  }

  /**
   * prom-client's series for these labels: found once (by the labels object it
   * keeps), made with zero() when it has none, found again after a reset().
   */
  #seriesNow (): StoredSeries {
    const storage = storageOf(this.#histogram)
    if (this.#series !== undefined && this.#seriesIn === storage.hashMap) return this.#series
    let series = findSeries(storage, this.#labels)
    if (series === undefined) {
      this.#histogram.zero(this.#labels)
      series = findSeries(storage, this.#labels)
    }
    if (series === undefined) throw new Error(`prom-client's Histogram keeps no series for ${JSON.stringify(this.#labels)}: its storage changed shape`)
    this.#series = series
    this.#seriesIn = storage.hashMap
    return series
  }
}

function storageOf (histogram: Histogram<string>): HistogramStorage {
  return histogram as unknown as HistogramStorage
}

function findSeries (storage: HistogramStorage, labels: object): StoredSeries | undefined {
  const wanted = Object.entries(labels)
  return Object.values(storage.hashMap).find((series) => {
    const have = series.labels as Record<string, unknown>
    return Object.keys(have).length === wanted.length && wanted.every(([name, value]) => have[name] === value)
  })
}
