/** cluster/gathering.ts: one question to several workers, answered under its id, on a ManualClock. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Gathering } from '../../../src/cluster/gathering.js'
import { ManualClock } from '../../../src/util/clock.js'

test('resolves once every worker asked has answered, with their answers; a second answer, a stranger\'s, or one to another id is ignored', async () => {
  const clock = new ManualClock()
  const gathering = new Gathering<string>(clock, 1000)
  let sentId = 0
  const asked = gathering.ask([1, 2], (id) => { sentId = id })
  gathering.answer(sentId, 1, 'one')
  gathering.answer(sentId, 1, 'one again')
  gathering.answer(sentId, 3, 'a stranger')
  gathering.answer(sentId + 1, 2, 'another question')
  gathering.answer(sentId, 2, 'two')
  assert.deepEqual(await asked, { answers: ['one', 'two'], isComplete: true })
})

test('at the deadline it resolves with what came, not complete; a late answer is ignored', async () => {
  const clock = new ManualClock()
  const gathering = new Gathering<string>(clock, 1000)
  let sentId = 0
  const asked = gathering.ask([1, 2], (id) => { sentId = id })
  gathering.answer(sentId, 2, 'two')
  await clock.advanceAndSettle(999)
  let isSettled = false
  void asked.then(() => { isSettled = true })
  await clock.advanceAndSettle(0)
  assert.equal(isSettled, false, 'not before the deadline')
  await clock.advanceAndSettle(1)
  assert.deepEqual(await asked, { answers: ['two'], isComplete: false })
  gathering.answer(sentId, 1, 'late')
})

test('no worker to ask: the question is still sent (kept for those that start later), and resolves at once', async () => {
  const gathering = new Gathering<number>(new ManualClock(), 1000)
  const sent: number[] = []
  assert.deepEqual(await gathering.ask([], (id) => { sent.push(id) }), { answers: [], isComplete: true })
  await gathering.ask([], (id) => { sent.push(id) })
  assert.deepEqual(sent, [1, 2], 'each question its own id')
})
