import { isoNow, type Clock, type Timer } from '../util/clock.js'

/** What the history samples: request and 5xx totals per backend name, and DNS queries sent, since start. */
export type Totals = { readonly byBackend: ReadonlyMap<string, { readonly requests: number, readonly errors: number }>, readonly dnsQueries: number }

/** One point: rates per second over the interval that ended at `at`. */
export type HistoryPoint = { readonly at: string, readonly dnsQueries: number, readonly backends: Readonly<Record<string, { readonly requests: number, readonly errors: number }>> }

/** Sampled this often, kept this long: the dashboard's five minutes. */
export const SAMPLE_EVERY_MS = 5000
export const KEPT_MS = 5 * 60_000

/**
 * The dashboard's five minutes of rates, kept by the control plane (issue
 * 24), so a tab opened now shows the past instead of starting empty: every
 * SAMPLE_EVERY_MS the totals are read (the workers' summed, as /admin/state
 * does) and turned into rates against the sample before. A backend that
 * went away leaves the points it had. The timer does not keep the process
 * alive.
 */
export class RateHistory {
  readonly #clock: Clock
  readonly #read: () => Promise<Totals>
  readonly #points: HistoryPoint[] = []
  #previous: { readonly atMs: number, readonly totals: Totals } | undefined
  #timer: Timer | undefined
  #isStopped = false

  constructor (clock: Clock, read: () => Promise<Totals>) {
    this.#clock = clock
    this.#read = read
  }

  start (): void {
    this.#schedule()
  }

  stop (): void {
    this.#isStopped = true
    this.#timer?.cancel()
  }

  get points (): readonly HistoryPoint[] { return this.#points }

  /** Read the totals now and add a point (the timer calls it; tests may too). */
  async sample (): Promise<void> {
    const totals = await this.#read()
    const atMs = this.#clock.now()
    const previous = this.#previous
    this.#previous = { atMs, totals }
    if (previous === undefined) return
    const seconds = (atMs - previous.atMs) / 1000
    if (seconds <= 0) return
    const backends: Record<string, { requests: number, errors: number }> = {}
    for (const [name, counts] of totals.byBackend) {
      const before = previous.totals.byBackend.get(name)
      if (before === undefined) continue
      backends[name] = { requests: Math.max(0, counts.requests - before.requests) / seconds, errors: Math.max(0, counts.errors - before.errors) / seconds }
    }
    this.#points.push({ at: isoNow(this.#clock), dnsQueries: Math.max(0, totals.dnsQueries - previous.totals.dnsQueries) / seconds, backends })
    while (this.#points.length > KEPT_MS / SAMPLE_EVERY_MS) this.#points.shift()
  }

  #schedule (): void {
    if (this.#isStopped) return
    this.#timer = this.#clock.setTimeout(() => {
      // A failed read (a worker replaced mid-gathering) skips one point; the next tries again.
      this.sample().catch(() => {}).finally(() => { this.#schedule() })
    }, SAMPLE_EVERY_MS, { unref: true })
  }
}
