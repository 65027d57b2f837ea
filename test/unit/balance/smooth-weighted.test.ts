import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SmoothWeighted } from '../../../src/balance/smooth-weighted.js'

type Entry = { readonly name: string, readonly weight: number }
const byName = (entry: Entry): string => entry.name
const byWeight = (entry: Entry): number => entry.weight

test('smooth weighted: 5:1:1 gives nginx\'s interleaved sequence', () => {
  const rotation = new SmoothWeighted<string>()
  const entries = [{ name: 'a', weight: 5 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }]
  const picks = Array.from({ length: 7 }, () => rotation.pick(entries, byName, byWeight)?.name)
  assert.deepEqual(picks, ['a', 'a', 'b', 'a', 'c', 'a', 'a'])
})

test('smooth weighted: weight 0 or less is passed over, keeps its state; none positive: undefined', () => {
  const rotation = new SmoothWeighted<string>()
  const open = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]
  assert.equal(rotation.pick(open, byName, byWeight)?.name, 'a')
  // b is closed for a while: a alone, and b's lead is kept for when it returns.
  const closed = [{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }]
  assert.deepEqual([rotation.pick(closed, byName, byWeight)?.name, rotation.pick(closed, byName, byWeight)?.name], ['a', 'a'])
  assert.equal(rotation.pick(open, byName, byWeight)?.name, 'b')
  assert.equal(rotation.pick([{ name: 'a', weight: 0 }, { name: 'b', weight: -1 }], byName, byWeight), undefined)
})

test('smooth weighted: state is per key, whatever the entries\' order; keepOnly forgets the others', () => {
  const rotation = new SmoothWeighted<string>()
  const a = { name: 'a', weight: 2 }
  const b = { name: 'b', weight: 1 }
  const picks = [[a, b], [b, a], [a, b]].map((entries) => rotation.pick(entries, byName, byWeight)?.name)
  assert.deepEqual(picks, ['a', 'b', 'a'])
  assert.equal(rotation.size, 2)
  rotation.keepOnly(new Set(['a']))
  assert.equal(rotation.size, 1)
  assert.equal(rotation.pick([b], byName, byWeight)?.name, 'b')
})
