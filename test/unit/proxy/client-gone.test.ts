import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ClientGone } from '../../../src/proxy/client-gone.js'

test('ClientGone: listeners run once when it fires, at once when added after, never after off()', () => {
  const gone = new ClientGone()
  const calls: string[] = []
  const removed = (): void => { calls.push('removed') }
  gone.on(() => { calls.push('a') })
  gone.on(removed)
  gone.off(removed)
  assert.equal(gone.isGone, false)
  gone.fire()
  gone.fire()
  assert.deepEqual(calls, ['a'])
  gone.on(() => { calls.push('late') })
  assert.deepEqual(calls, ['a', 'late'])
  assert.equal(gone.isGone, true)
})
