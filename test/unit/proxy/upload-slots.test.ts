import { test } from 'node:test'
import assert from 'node:assert/strict'
import { UploadSlots } from '../../../src/proxy/upload-slots.js'

test('streamed uploads take at most `cap` slots per instance; the rest wait in arrival order; one that stops waiting is skipped', () => {
  const slots = new UploadSlots()
  const granted: string[] = []
  assert.equal(slots.take('a', 2, () => { granted.push('1') }), true)
  assert.equal(slots.take('a', 2, () => { granted.push('2') }), true)
  const third = (): void => { granted.push('3') }
  assert.equal(slots.take('a', 2, third), false)
  assert.equal(slots.take('a', 2, () => { granted.push('4') }), false)
  assert.equal(slots.take('b', 2, () => {}), true, 'another instance has its own slots')
  assert.equal(slots.waiting, 2)
  slots.withdraw('a', third)
  slots.give('a')
  assert.deepEqual(granted, ['4'])
  slots.give('a')
  slots.give('a')
  assert.equal(slots.take('a', 2, () => {}), true, 'all given back')
  assert.equal(slots.waiting, 0)
})
