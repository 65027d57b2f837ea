import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HashKey } from '../../../src/config/types.js'
import type { Backend } from '../../../src/upstream/backend.js'
import { Split } from '../../../src/upstream/split.js'

/** What a split asks of a member: its name, whether it has a usable instance, and which (one instance each, named after it). */
type Member = { readonly name: string, usable: boolean }

function splitOf (weights: Record<string, number>, stickyOn?: HashKey): { split: Split, members: Map<string, Member> } {
  const members = new Map(Object.keys(weights).map((name) => [name, { name, usable: true }]))
  const split = new Split(
    { name: 'web-prod', members: Object.entries(weights).map(([backend, weight]) => ({ backend, weight })), stickyOn },
    (name) => {
      const member = members.get(name) as Member
      return { name, hasUsableInstance: () => member.usable, hasUntriedInstance: (tried: ReadonlySet<string>) => member.usable && !tried.has(`${name}-0`) } as unknown as Backend
    }
  )
  return { split, members }
}

function counts (choose: () => Backend | undefined, count: number): Record<string, number> {
  const result: Record<string, number> = {}
  for (let index = 0; index < count; index++) {
    const name = choose()?.name ?? '(none)'
    result[name] = (result[name] ?? 0) + 1
  }
  return result
}

test('split: shares follow the weights exactly, interleaved (90/10 over 10,000)', () => {
  const { split } = splitOf({ 'web-v2': 10, 'web-v1': 90 })
  assert.deepEqual(counts(() => split.choose(undefined), 10_000), { 'web-v1': 9_000, 'web-v2': 1_000 })
  const first = Array.from({ length: 10 }, () => split.choose(undefined)?.name)
  assert.equal(first.filter((name) => name === 'web-v2').length, 1, 'one canary in every ten, not ten in a row')
})

test('split: a member with no usable instance gets no share; its share goes to the others; none usable: undefined', () => {
  const { split, members } = splitOf({ a: 1, b: 1, c: 2 })
  ;(members.get('c') as Member).usable = false
  assert.deepEqual(counts(() => split.choose(undefined), 1_000), { a: 500, b: 500 })
  assert.deepEqual(counts(() => split.choose('user-7'), 10).c, undefined)
  for (const member of members.values()) member.usable = false
  assert.equal(split.choose(undefined), undefined)
  assert.equal(split.choose('user-7'), undefined)
})

test('split: a weight of 0 takes no traffic', () => {
  const { split } = splitOf({ dark: 0, live: 1 })
  assert.deepEqual(counts(() => split.choose(undefined), 100), { live: 100 })
  let key = 0
  assert.deepEqual(counts(() => split.choose(`key-${key++}`), 100), { live: 100 })
})

test('split: a sticky key always gets the same member, the same in another replica; shares follow the weights', () => {
  const one = splitOf({ 'web-v2': 10, 'web-v1': 90 }, { kind: 'cookie', name: 'session' }).split
  const other = splitOf({ 'web-v2': 10, 'web-v1': 90 }, { kind: 'cookie', name: 'session' }).split
  let canary = 0
  for (let index = 0; index < 10_000; index++) {
    const key = `session-${index}`
    const chosen = one.choose(key)?.name
    assert.equal(one.choose(key)?.name, chosen)
    assert.equal(other.choose(key)?.name, chosen, 'no state: another process agrees')
    if (chosen === 'web-v2') canary++
  }
  assert.ok(canary > 800 && canary < 1200, `about 10 % of keys on the canary: ${canary}`)
})

test('split: a member leaving moves only its own keys (rendezvous hashing)', () => {
  const { split, members } = splitOf({ a: 1, b: 1, c: 1 }, { kind: 'header', name: 'x-user' })
  const before = new Map(Array.from({ length: 3_000 }, (_, index) => [`u${index}`, split.choose(`u${index}`)?.name]))
  ;(members.get('c') as Member).usable = false
  for (const [key, name] of before) {
    const after = split.choose(key)?.name
    if (name !== 'c') assert.equal(after, name, `${key} stayed on ${String(name)}`)
    else assert.notEqual(after, 'c')
  }
})

test('split: after a connect failure, another member with an untried instance, by weight; a sticky key\'s second choice is stable; none left: undefined', () => {
  const { split, members } = splitOf({ a: 1, b: 1, c: 2 })
  // a's only instance was tried: b and c share a's spilled requests by their weights.
  assert.deepEqual(counts(() => split.chooseUntried(undefined, new Set(['a-0'])), 300), { b: 100, c: 200 })
  assert.deepEqual(counts(() => split.chooseUntried(undefined, new Set(['a-0', 'c-0'])), 10), { b: 10 })
  ;(members.get('b') as Member).usable = false
  assert.equal(split.chooseUntried(undefined, new Set(['a-0', 'c-0'])), undefined, 'b ejected, a and c tried: nowhere left')
  ;(members.get('b') as Member).usable = true

  const sticky = splitOf({ a: 1, b: 1, c: 2 }, { kind: 'cookie', name: 'session' }).split
  for (let index = 0; index < 50; index++) {
    const key = `session-${index}`
    const first = sticky.choose(key)?.name as string
    const second = sticky.chooseUntried(key, new Set([`${first}-0`]))?.name
    assert.notEqual(second, first)
    assert.equal(sticky.chooseUntried(key, new Set([`${first}-0`]))?.name, second, `${key}: the same second choice every time`)
  }
})
