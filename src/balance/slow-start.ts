import type { Instance } from '../discovery/instance-set.js'
import type { Random } from '../util/random.js'
import type { BalancePolicy, PickContext } from './policy.js'

/** A new instance starts at this share of its weight (Envoy's min_weight_percent default). */
export const SLOW_START_FLOOR = 0.1

export type SlowStart = {
  readonly durationMs: number
  /** When the instance last became usable (appeared, came back from ejection or a failed check); -Infinity: always was. */
  readonly warmFromMs: (instance: Instance) => number
  /** The weight the policy gives an instance: its SRV weight for `weighted`, 1 for the others. */
  readonly weightOf: (instance: Instance) => number
  readonly random: Random
}

/** How much of its weight an instance gets `elapsedMs` after it became usable: linear from the floor to 1. */
export function slowStartFactor (elapsedMs: number, durationMs: number): number {
  if (elapsedMs >= durationMs) return 1
  return Math.max(SLOW_START_FLOOR, elapsedMs / durationMs)
}

/**
 * Pick with new instances held back: a request goes to a warming instance
 * with the probability of its ramped weight among all candidates' weights,
 * and otherwise to the balance policy's choice among the warm ones, so the
 * policy's own order (rotation, least-request) is kept for them. When every
 * candidate is warming (a cold start, a mass replacement), none is held back:
 * there is nobody to hand their share to.
 */
export function pickWithSlowStart (candidates: readonly Instance[], nowMs: number, slowStart: SlowStart, policy: BalancePolicy, context: PickContext): Instance {
  const warm: Instance[] = []
  const warming: Array<{ readonly instance: Instance, readonly share: number }> = []
  let warmWeight = 0
  let warmingWeight = 0
  for (const instance of candidates) {
    const elapsed = nowMs - slowStart.warmFromMs(instance)
    if (elapsed >= slowStart.durationMs) {
      warm.push(instance)
      warmWeight += slowStart.weightOf(instance)
      continue
    }
    const share = slowStart.weightOf(instance) * slowStartFactor(elapsed, slowStart.durationMs)
    warming.push({ instance, share })
    warmingWeight += share
  }
  if (warm.length === 0 || warming.length === 0 || warmingWeight === 0) return policy.pick(candidates, context)
  let point = slowStart.random.next() * (warmWeight + warmingWeight) - warmWeight
  if (point < 0) return policy.pick(warm, context)
  for (const { instance, share } of warming) {
    point -= share
    if (point < 0) return instance
  }
  return (warming[warming.length - 1] as { instance: Instance }).instance
}
