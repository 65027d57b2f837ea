import type { Instance } from '../discovery/instance-set.js'

/** What a policy may know of a request. */
export type PickContext = {
  /** The hash key for `balance: hash` (header, cookie, client ip or path), already extracted. */
  readonly hashKey: string | undefined
  /** In-flight requests of an instance, for least-request. */
  readonly inFlight: (instance: Instance) => number
}

/**
 * Chooses one instance among usable ones. `candidates` is never empty, holds
 * one priority group (lowest first, the backend decides), and is immutable.
 * Policies hold only their own rotation state; randomness is injected.
 */
export interface BalancePolicy {
  pick (candidates: readonly Instance[], context: PickContext): Instance
}
