import type { Counter } from 'prom-client'

/**
 * A counter's increments for one label set, kept as a plain number on the
 * request path and handed to prom-client when the registry is read (its
 * collect hook): prom-client validates and hashes the labels on every inc,
 * even through a bound child, which cost ~1 µs a request (docs/BENCHMARKS.md).
 */
export type Tally<Label extends string> = { readonly labels: Partial<Record<Label, string>>, pending: number }

/** Hand each tally's increments to `counter`, and start them again from 0. */
export function flushTallies<Label extends string> (counter: Counter<Label>, tallies: Iterable<Tally<Label>>): void {
  for (const tally of tallies) {
    if (tally.pending === 0) continue
    counter.inc(tally.labels, tally.pending)
    tally.pending = 0
  }
}
