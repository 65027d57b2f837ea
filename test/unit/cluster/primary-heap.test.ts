/**
 * primary-heap.ts relies on V8 reading --semi-space-growth-factor each time
 * it considers growing the young generation, so that setting it at run time
 * works. This fails when a V8 (a Node upgrade) stops honouring it: then the
 * primary's RSS after start (issue 20: ≤ 75 MB) needs another way.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'

/** The young generation's size in MB before and after a burst of allocations like start-up's, in a fresh process. */
function youngGenerationAcrossBurst (calls: string): { readonly before: number, readonly after: number } {
  const program = `
    const heap = await import(${JSON.stringify(new URL('../../../src/cluster/primary-heap.ts', import.meta.url).href)})
    ${calls}
    const { getHeapSpaceStatistics } = await import('node:v8')
    const size = () => getHeapSpaceStatistics().find((entry) => entry.space_name === 'new_space').space_size / 1048576
    const before = size()
    let kept = []
    for (let round = 0; round < 100; round++) {
      // Half survive a scavenge or two, as start-up's objects do: V8 grows the young generation for that.
      for (let index = 0; index < 20000; index++) kept.push({ index, text: 'x'.repeat(index % 50) })
      if (kept.length > 100000) kept = kept.slice(50000)
    }
    console.log(JSON.stringify({ before, after: size() }))
  `
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(result.status, 0, result.stderr)
  return JSON.parse(result.stdout.trim()) as { before: number, after: number }
}

test('the young generation stays at its starting size once keepYoungGenerationSmall has run, and grows again with letYoungGenerationGrow', () => {
  const small = youngGenerationAcrossBurst('heap.keepYoungGenerationSmall()')
  assert.ok(small.after <= small.before, `kept at its size when the flag was set: ${JSON.stringify(small)} MB`)
  const grown = youngGenerationAcrossBurst('')
  assert.ok(grown.after >= 2 * grown.before, `V8's default grows it: ${JSON.stringify(grown)} MB`)
  const grownAgain = youngGenerationAcrossBurst('heap.keepYoungGenerationSmall(); heap.letYoungGenerationGrow()')
  assert.ok(grownAgain.after >= 2 * grownAgain.before, `and again once allowed: ${JSON.stringify(grownAgain)} MB`)
})
