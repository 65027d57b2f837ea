import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toInstance, type Instance } from '../../../src/discovery/instance-set.js'
import { WeightedPolicy } from '../../../src/balance/weighted.js'
import { RoundRobinPolicy } from '../../../src/balance/round-robin.js'
import { RandomPolicy } from '../../../src/balance/random.js'
import { LeastRequestPolicy } from '../../../src/balance/least-request.js'
import { HashPolicy } from '../../../src/balance/hash.js'
import type { PickContext } from '../../../src/balance/policy.js'
import { SeededRandom } from '../../../src/util/random.js'

const at = (last: number, weight = 1): Instance => toInstance({ address: `10.0.0.${last}`, port: 80, priority: 1, weight })
const NO_CONTEXT: PickContext = { hashKey: undefined, inFlight: () => 0 }
const picks = (pick: () => Instance, count: number) => Array.from({ length: count }, () => pick().address.split('.')[3]).join('')

test('weighted: smooth weighted round-robin, 5:1:1 interleaved (nginx sequence)', () => {
  const policy = new WeightedPolicy()
  const candidates = [at(1, 5), at(2, 1), at(3, 1)]
  assert.equal(picks(() => policy.pick(candidates), 14), '11213111121311')
})

test('weighted: equal weights rotate evenly', () => {
  const policy = new WeightedPolicy()
  const candidates = [at(1), at(2), at(3)]
  assert.equal(picks(() => policy.pick(candidates), 6), '123123')
})

test('weighted: weight 0 is never picked beside a positive weight; all zero rotate evenly (RFC 2782)', () => {
  const policy = new WeightedPolicy()
  assert.equal(picks(() => policy.pick([at(1, 0), at(2, 3)]), 4), '2222')
  assert.equal(picks(() => policy.pick([at(1, 0), at(2, 0)]), 4), '1212')
})

test('weighted: shares follow weights over many picks', () => {
  const policy = new WeightedPolicy()
  const candidates = [at(1, 90), at(2, 10)]
  const counts = { '1': 0, '2': 0 }
  for (let index = 0; index < 1000; index++) counts[policy.pick(candidates).address.split('.')[3] as '1' | '2']++
  assert.deepEqual(counts, { '1': 900, '2': 100 })
})

test('round-robin: each in turn, weights ignored', () => {
  const policy = new RoundRobinPolicy()
  assert.equal(picks(() => policy.pick([at(1, 5), at(2), at(3)]), 7), '1231231')
})

test('random: a fixed seed gives a fixed sequence', () => {
  const candidates = [at(1), at(2), at(3)]
  const first = picks(() => new RandomPolicy(new SeededRandom(7)).pick(candidates), 1)
  const policy = new RandomPolicy(new SeededRandom(7))
  const again = new RandomPolicy(new SeededRandom(7))
  const sequence = picks(() => policy.pick(candidates), 12)
  assert.equal(sequence, picks(() => again.pick(candidates), 12))
  assert.equal(sequence[0], first)
  assert.equal(new Set(sequence).size, 3)
})

test('least-request: of two random choices, the one with fewer in flight', () => {
  const candidates = [at(1), at(2), at(3)]
  const inFlight = new Map([['10.0.0.1:80', 10], ['10.0.0.2:80', 0], ['10.0.0.3:80', 10]])
  // The draws are recorded, so each pick is checked against the pair it was made from.
  const seeded = new SeededRandom(3)
  const draws: number[] = []
  const policy = new LeastRequestPolicy({ next: () => { const value = seeded.next(); draws.push(value); return value } })
  const context: PickContext = { hashKey: undefined, inFlight: (instance) => inFlight.get(instance.key) ?? 0 }
  let pairsWithTheIdle = 0
  for (let round = 0; round < 60; round++) {
    draws.length = 0
    const picked = policy.pick(candidates, context)
    const first = Math.floor((draws[0] as number) * 3)
    const second = (first + 1 + Math.floor((draws[1] as number) * 2)) % 3
    assert.notEqual(first, second)
    const pair = [candidates[first], candidates[second]]
    if (pair.some((instance) => instance?.address === '10.0.0.2')) {
      pairsWithTheIdle++
      assert.equal(picked.address, '10.0.0.2', `round ${round}: the idle instance was in the pair`)
    } else {
      assert.ok(pair.includes(picked), `round ${round}: picked from its pair`)
    }
  }
  assert.ok(pairsWithTheIdle > 20 && pairsWithTheIdle < 60, `${pairsWithTheIdle} of 60 pairs held the idle instance`)
  assert.equal(new LeastRequestPolicy(new SeededRandom(3)).pick([at(9)], context).address, '10.0.0.9')
})

test('least-request: never returns the same index twice as its pair (both choices distinct)', () => {
  const policy = new LeastRequestPolicy(new SeededRandom(11))
  const busy = at(1)
  const idle = at(2)
  const context: PickContext = { hashKey: undefined, inFlight: (instance) => instance === busy ? 5 : 0 }
  for (let index = 0; index < 50; index++) assert.equal(policy.pick([busy, idle], context), idle)
})

test('hash: one key always lands on one instance', () => {
  const policy = new HashPolicy(new SeededRandom(1))
  const candidates = [at(1), at(2), at(3), at(4)]
  for (const key of ['alice', 'bob', 'carol']) {
    const first = policy.pick(candidates, { ...NO_CONTEXT, hashKey: key })
    for (let round = 0; round < 10; round++) assert.equal(policy.pick(candidates, { ...NO_CONTEXT, hashKey: key }), first)
  }
})

test('hash: adding an instance moves only its share of keys; removing one moves only its own', () => {
  const policy = new HashPolicy(new SeededRandom(1))
  const four = [at(1), at(2), at(3), at(4)]
  const five = [...four, at(5)]
  const keys = Array.from({ length: 5000 }, (_, index) => `user-${index}`)
  const before = keys.map((key) => policy.pick(four, { ...NO_CONTEXT, hashKey: key }).key)
  const after = keys.map((key) => policy.pick(five, { ...NO_CONTEXT, hashKey: key }).key)
  const moved = keys.filter((_, index) => before[index] !== after[index])
  assert.ok(moved.every((_, index) => after[keys.indexOf(moved[index] as string)] === '10.0.0.5:80'), 'keys moved only to the new instance')
  assert.ok(moved.length > 5000 * 0.1 && moved.length < 5000 * 0.3, `about a fifth of the keys moved: ${moved.length}`)
  const three = [at(1), at(2), at(4)]
  const removed = keys.map((key) => policy.pick(three, { ...NO_CONTEXT, hashKey: key }).key)
  assert.ok(keys.every((_, index) => before[index] === '10.0.0.3:80' || removed[index] === before[index]), 'only instance 3\'s keys moved')
})

test('hash: without a key, a random candidate', () => {
  const policy = new HashPolicy(new SeededRandom(5))
  const candidates = [at(1), at(2), at(3)]
  assert.equal(new Set(picks(() => policy.pick(candidates, NO_CONTEXT), 30)).size, 3)
})
