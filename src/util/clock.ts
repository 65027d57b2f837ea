import type { Milliseconds } from './duration.js'

/**
 * Time as domain modules see it. Production uses the monotonic clock; tests use
 * ManualClock and walk a timeline without sleeping.
 */
export interface Clock {
  now (): Milliseconds
}

export const systemClock: Clock = {
  now: () => performance.now() as Milliseconds
}

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number
  constructor (start = 1_000_000) { this.#now = start }
  now (): Milliseconds { return this.#now as Milliseconds }
  advance (byMs: number): void { this.#now += byMs }
}
