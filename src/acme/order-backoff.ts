import type { Clock } from '../util/clock.js'

/**
 * Retries after a failed order, as Caddy spaces them: soon at first, then
 * no more than hourly (a CA counts failed validations: Let's Encrypt allows
 * 5 an hour per name).
 */
const RETRY_DELAYS_MS = [60_000, 120_000, 300_000, 600_000, 1_200_000, 1_800_000, 3_600_000]

/** A CA's Retry-After is honoured up to a day: a larger one (or a wrong one) must not stop renewals until a restart. */
const MAX_RETRY_AFTER_MS = 86_400_000

/** Failed on-demand names remembered at most (the oldest forgotten first). */
const MAX_FAILED_NAMES = 10_000

/** The wait before the next order after `failures` failed ones: the schedule's, or the CA's Retry-After when later. */
export function retryDelayMs (failures: number, retryAfterMs: number | undefined): number {
  return Math.max(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length) - 1] as number, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS))
}

/** On-demand names whose last order failed, with their count: the next order waits for retryDelayMs. */
export class FailedNames {
  readonly #clock: Clock
  readonly #names = new Map<string, { readonly failures: number, readonly untilMs: number }>()

  constructor (clock: Clock) { this.#clock = clock }

  fail (name: string, failures: number, retryAfterMs: number | undefined): void {
    if (this.#names.size >= MAX_FAILED_NAMES) this.#names.delete(this.#names.keys().next().value as string)
    this.#names.delete(name)
    this.#names.set(name, { failures, untilMs: this.#clock.now() + retryDelayMs(failures, retryAfterMs) })
  }

  forget (name: string): void { this.#names.delete(name) }

  isWaiting (name: string): boolean { return (this.#names.get(name)?.untilMs ?? -Infinity) > this.#clock.now() }

  /** Failures so far (kept across the wait, so delays grow); 0 for a name that never failed. */
  failures (name: string): number { return this.#names.get(name)?.failures ?? 0 }
}
