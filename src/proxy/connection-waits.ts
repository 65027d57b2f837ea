import type { Clock, Timer } from '../util/clock.js'

/** An attempt that left undici's dispatch without a connection (failover-request.ts). */
export interface WaitingAttempt {
  /** Still without a connection now: bound what is left of its wait (a timer of its own). */
  boundWait (): void
}

/**
 * Attempts still waiting for a connection once undici's dispatch returned,
 * looked at together a millisecond later. Since undici 7.30 an idle
 * keep-alive connection is checked for one event-loop turn before it is
 * reused (GHSA-35p6-xmwp-9g52), so nearly every attempt leaves dispatch
 * without a connection and has one a turn later. A timer per attempt to
 * bound that wait cost ~4 µs a request in the pinned bench
 * (docs/BENCHMARKS.md, 2026-11-30); one check per millisecond for all of
 * them costs an array push each, and only an attempt still waiting then (a
 * full pool, a new connection being opened) gets a timer of its own, for what
 * is left of its budget, so the bound it keeps is the same.
 */
export class ConnectionWaits {
  readonly #clock: Clock
  #waiting: WaitingAttempt[] = []
  #check: Timer | undefined

  constructor (clock: Clock) {
    this.#clock = clock
  }

  add (attempt: WaitingAttempt): void {
    this.#waiting.push(attempt)
    this.#check ??= this.#clock.setTimeout(this.#boundThoseStillWaiting, 1)
  }

  readonly #boundThoseStillWaiting = (): void => {
    this.#check = undefined
    const waiting = this.#waiting
    this.#waiting = []
    for (const attempt of waiting) attempt.boundWait()
  }
}
