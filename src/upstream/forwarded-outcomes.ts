import type { Outcome } from './backend.js'

/**
 * A cluster worker's passive outcomes, on their way to the primary, which
 * judges them once for every worker. A success matters to the primary only
 * when it ends a run of failures, so the hot path sends nothing while an
 * instance is fine: this remembers which instances' last outcome sent was a
 * failure. (The primary's own HealthTable counts the failures in a row.)
 */
export class ForwardedOutcomes {
  readonly #send: (key: string, outcome: Outcome) => void
  readonly #failing = new Set<string>()

  constructor (send: (key: string, outcome: Outcome) => void) { this.#send = send }

  report (key: string, outcome: Outcome): void {
    if (outcome === 'success') {
      if (!this.#failing.delete(key)) return
    } else {
      this.#failing.add(key)
    }
    this.#send(key, outcome)
  }

  /** Instances that left the set are forgotten with their health. */
  retain (isKept: (key: string) => boolean): void {
    for (const key of this.#failing) if (!isKept(key)) this.#failing.delete(key)
  }
}
