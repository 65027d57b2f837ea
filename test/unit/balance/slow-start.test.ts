import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toInstance, type Instance } from '../../../src/discovery/instance-set.js'
import { RoundRobinPolicy } from '../../../src/balance/round-robin.js'
import { WeightedPolicy } from '../../../src/balance/weighted.js'
import { LeastRequestPolicy } from '../../../src/balance/least-request.js'
import { RandomPolicy } from '../../../src/balance/random.js'
import type { BalancePolicy, PickContext } from '../../../src/balance/policy.js'
import { SLOW_START_FLOOR, pickWithSlowStart, slowStartFactor, type SlowStart } from '../../../src/balance/slow-start.js'
import { SeededRandom } from '../../../src/util/random.js'

const at = (last: number, weight = 1): Instance => toInstance({ address: `10.0.0.${last}`, port: 80, priority: 1, weight })
const NO_CONTEXT: PickContext = { hashKey: undefined, inFlight: () => 0 }

/** The new instance's share of `count` picks at `nowMs`, when it became usable at 0 and the others long before. */
function newcomerShare (policy: BalancePolicy, nowMs: number, count = 20_000, weights = false): number {
  const old = [at(1, 3), at(2, 3), at(3, 3)]
  const newcomer = at(4, 3)
  const slowStart: SlowStart = {
    durationMs: 30_000,
    warmFromMs: (instance) => instance === newcomer ? 0 : -Infinity,
    weightOf: weights ? (instance) => instance.weight : () => 1,
    random: new SeededRandom(7)
  }
  const candidates = [...old, newcomer]
  let hits = 0
  for (let index = 0; index < count; index++) if (pickWithSlowStart(candidates, nowMs, slowStart, policy, NO_CONTEXT) === newcomer) hits++
  return hits / count
}

test('slow start: the factor ramps linearly from the floor to 1 over the duration', () => {
  assert.equal(slowStartFactor(0, 30_000), SLOW_START_FLOOR)
  assert.equal(slowStartFactor(1_000, 30_000), SLOW_START_FLOOR)
  assert.equal(slowStartFactor(15_000, 30_000), 0.5)
  assert.equal(slowStartFactor(30_000, 30_000), 1)
  assert.equal(slowStartFactor(90_000, 30_000), 1)
})

test('slow start: a new instance\'s share rises over slowStart for every policy that uses weights or counts', () => {
  const policies: Array<[string, () => BalancePolicy, boolean]> = [
    ['weighted', () => new WeightedPolicy(), true],
    ['round-robin', () => new RoundRobinPolicy(), false],
    ['least-request', () => new LeastRequestPolicy(new SeededRandom(3)), false],
    ['random', () => new RandomPolicy(new SeededRandom(3)), false]
  ]
  for (const [name, make, weights] of policies) {
    // Four equal instances: full share 1/4. At f of its weight: f / (3 + f).
    const expected = (factor: number): number => factor / (3 + factor)
    for (const [nowMs, factor] of [[0, 0.1], [15_000, 0.5], [24_000, 0.8]] as const) {
      const share = newcomerShare(make(), nowMs, 20_000, weights)
      assert.ok(Math.abs(share - expected(factor)) < 0.012, `${name} at ${nowMs} ms: share ${share.toFixed(3)}, expected ${expected(factor).toFixed(3)}`)
    }
    const full = newcomerShare(make(), 30_000, 20_000, weights)
    assert.ok(Math.abs(full - 0.25) < 0.012, `${name} after slowStart: ${full}`)
  }
})

test('slow start: when every candidate is new, none is held back (a cold start, a mass replacement)', () => {
  const candidates = [at(1), at(2), at(3)]
  const slowStart: SlowStart = { durationMs: 30_000, warmFromMs: () => 0, weightOf: () => 1, random: new SeededRandom(1) }
  const policy = new RoundRobinPolicy()
  const picked = Array.from({ length: 6 }, () => pickWithSlowStart(candidates, 1_000, slowStart, policy, NO_CONTEXT).address.split('.')[3]).join('')
  assert.equal(picked, '123123', 'the policy alone decides: an even rotation')
})

test('slow start: the warm instances keep the policy\'s own order', () => {
  const newcomer = at(9)
  const candidates = [at(1), at(2), newcomer]
  const slowStart: SlowStart = { durationMs: 30_000, warmFromMs: (instance) => instance === newcomer ? 0 : -Infinity, weightOf: () => 1, random: new SeededRandom(5) }
  const policy = new RoundRobinPolicy()
  const warmPicks = Array.from({ length: 200 }, () => pickWithSlowStart(candidates, 0, slowStart, policy, NO_CONTEXT)).filter((instance) => instance !== newcomer)
  assert.ok(warmPicks.every((instance, index) => instance === candidates[index % 2]), 'the warm ones alternate 1, 2, 1, 2')
})
