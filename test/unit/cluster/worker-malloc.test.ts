/**
 * Workers are forked with glibc's trim threshold held (cluster/worker-malloc.ts):
 * added unless the operator set those thresholds, and glibc then gives
 * freed memory back where, left to adjust the threshold, it keeps it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { WORKER_MALLOC_TRIM_THRESHOLD, workerMallocEnv } from '../../../src/cluster/worker-malloc.js'

test('the threshold is added to the fork\'s environment unless the operator set those thresholds, as variables or glibc tunables', () => {
  assert.deepEqual(workerMallocEnv({ PATH: '/usr/bin' }), { MALLOC_TRIM_THRESHOLD_: String(WORKER_MALLOC_TRIM_THRESHOLD) })
  assert.deepEqual(workerMallocEnv({ MALLOC_ARENA_MAX: '2' }), { MALLOC_TRIM_THRESHOLD_: String(WORKER_MALLOC_TRIM_THRESHOLD) }, 'arenas are another matter')
  assert.deepEqual(workerMallocEnv({ MALLOC_TRIM_THRESHOLD_: '0' }), {})
  assert.deepEqual(workerMallocEnv({ MALLOC_MMAP_THRESHOLD_: '65536' }), {})
  assert.deepEqual(workerMallocEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=0' }), {})
  assert.deepEqual(workerMallocEnv({ GLIBC_TUNABLES: 'glibc.rtld.optional_static_tls=1' }), { MALLOC_TRIM_THRESHOLD_: String(WORKER_MALLOC_TRIM_THRESHOLD) })
})

/**
 * MB still resident after 24 MB of 1 MB buffers are freed, in a fresh process
 * with this environment. A 16 MB block freed first is what makes glibc raise
 * its thresholds (the 1 MB blocks then come from its heap, and 24 MB free at
 * its top is under the raised trim threshold); with the threshold held they
 * are mapped and unmapped on their own.
 */
function keptAfterFree (env: Record<string, string>): number {
  const program = `
    const rss = () => process.memoryUsage.rss() / 1048576
    const settle = async () => { globalThis.gc(); globalThis.gc(); await new Promise((resolve) => setTimeout(resolve, 50)); globalThis.gc() }
    let large = Buffer.allocUnsafeSlow(16 << 20); large.fill(1); large = null
    await settle()
    const before = rss()
    let kept = []
    for (let index = 0; index < 24; index++) kept.push(Buffer.allocUnsafeSlow(1 << 20).fill(2))
    kept = null
    await settle()
    console.log(rss() - before)
  `
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^MALLOC_\w+_$/.test(name) && name !== 'GLIBC_TUNABLES' && name !== 'NODE_OPTIONS'))
  const result = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', program], { encoding: 'utf8', timeout: 30_000, env: { ...clean, ...env } })
  assert.equal(result.status, 0, result.stderr)
  return Number(result.stdout.trim())
}

test('glibc gives freed memory back with the threshold held, and keeps it without', { skip: process.platform !== 'linux' ? 'glibc only' : false }, () => {
  const held = keptAfterFree(workerMallocEnv({}))
  const free = keptAfterFree({})
  assert.ok(held < 8, `held: ${held.toFixed(1)} MB still resident`)
  assert.ok(free > 16, `glibc's own adjustment keeps the freed blocks: ${free.toFixed(1)} MB`)
})
