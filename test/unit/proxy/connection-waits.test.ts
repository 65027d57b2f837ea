import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../../src/util/clock.js'
import { ConnectionWaits, type WaitingAttempt } from '../../../src/proxy/connection-waits.js'

function attempt (): WaitingAttempt & { bounded: number } {
  const waiting = { bounded: 0, boundWait () { waiting.bounded++ } }
  return waiting
}

test('attempts without a connection are looked at together a millisecond later, each once, with one timer', () => {
  const clock = new ManualClock()
  const waits = new ConnectionWaits(clock)
  const first = attempt()
  const second = attempt()
  waits.add(first)
  waits.add(second)
  assert.equal(clock.pendingTimers, 1, 'one timer for the batch, not one per attempt')
  clock.advance(0.5)
  assert.deepEqual([first.bounded, second.bounded], [0, 0])
  clock.advance(0.5)
  assert.deepEqual([first.bounded, second.bounded], [1, 1])
  assert.equal(clock.pendingTimers, 0)
  clock.advance(10)
  assert.deepEqual([first.bounded, second.bounded], [1, 1], 'never twice')

  // The next batch gets its own look.
  const third = attempt()
  waits.add(third)
  clock.advance(1)
  assert.deepEqual([first.bounded, second.bounded, third.bounded], [1, 1, 1])
})

test('an attempt added while a batch is looked at waits for the next look', () => {
  const clock = new ManualClock()
  const waits = new ConnectionWaits(clock)
  const late = attempt()
  const early: WaitingAttempt = { boundWait () { waits.add(late) } }
  waits.add(early)
  clock.advance(1)
  assert.equal(late.bounded, 0)
  clock.advance(1)
  assert.equal(late.bounded, 1)
})
