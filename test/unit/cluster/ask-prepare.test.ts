/**
 * A reload's first phase for one worker, over the in-memory channel and on a
 * ManualClock: its answer, its silence, its death; and any number of reloads
 * leave nothing subscribed behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inProcessChannel } from '../../../src/cluster/channel.js'
import { askToPrepare } from '../../../src/cluster/ask-prepare.js'
import type { MessageOf, ToWorker } from '../../../src/cluster/protocol.js'
import { ManualClock } from '../../../src/util/clock.js'
import { documentListening } from '../../helpers/config-documents.js'

const log = { error: () => {} }

function config (generation: number): MessageOf<ToWorker, 'srvgate:config'> {
  return { type: 'srvgate:config', phase: 'prepare', generation, document: documentListening(8080), backends: [] }
}

const settle = async (): Promise<void> => { await new Promise((resolve) => { setImmediate(resolve) }) }

test('a worker that prepares answers; one that cannot says why; an answer for another generation is not its answer', async () => {
  const clock = new ManualClock()
  const { primary, worker } = inProcessChannel(log)
  worker.onMessage((message) => {
    if (message.type !== 'srvgate:config') return
    // An answer about another generation first: a late one from a reload before.
    worker.send({ type: 'srvgate:prepared', generation: message.generation - 1 })
    worker.send(message.generation === 2 ? { type: 'srvgate:prepared', generation: 2 } : { type: 'srvgate:prepared', generation: message.generation, error: 'backends.web: bad' })
  })
  assert.equal(await askToPrepare(primary, config(2), { clock, timeoutMs: 10_000, name: 'worker 1' }), undefined)
  assert.equal(await askToPrepare(primary, config(3), { clock, timeoutMs: 10_000, name: 'worker 1' }), 'backends.web: bad')
  assert.equal(clock.pendingTimers, 0, 'the timeout is cancelled once answered')
})

test('a worker that does not answer within the timeout is told so, on the clock (no sleep)', async () => {
  const clock = new ManualClock()
  const { primary } = inProcessChannel(log)
  let outcome: string | undefined = 'unsettled'
  void askToPrepare(primary, config(2), { clock, timeoutMs: 10_000, name: 'worker 4' }).then((error) => { outcome = error })
  clock.advance(9_999)
  await settle()
  assert.equal(outcome, 'unsettled')
  clock.advance(1)
  await settle()
  assert.equal(outcome, 'worker 4 did not answer within 10 s')
  assert.deepEqual(primary.listenerCounts(), { message: 0, close: 0 })
})

test('a worker whose channel closes while it prepares has exited; one already gone is told at once', async () => {
  const clock = new ManualClock()
  const { primary, worker } = inProcessChannel(log)
  const asked = askToPrepare(primary, config(2), { clock, timeoutMs: 10_000, name: 'worker 2' })
  worker.close()
  assert.equal(await asked, 'worker 2 exited')
  assert.equal(clock.pendingTimers, 0)
  assert.equal(await askToPrepare(primary, config(3), { clock, timeoutMs: 10_000, name: 'worker 2' }), 'worker 2 exited')
})

test('a thousand reloads leave no listener behind on the worker\'s channel', async () => {
  const clock = new ManualClock()
  const { primary, worker } = inProcessChannel(log)
  // What the pool itself keeps on a worker's channel: its message handler and, later, whatever else.
  primary.onMessage(() => {})
  primary.onClose(() => {})
  const before = primary.listenerCounts()
  let generation = 1
  worker.onMessage((message) => {
    // Every other reload fails in the worker, every third is never answered (timeout).
    if (message.type !== 'srvgate:config' || message.generation % 3 === 0) return
    worker.send({ type: 'srvgate:prepared', generation: message.generation, ...(message.generation % 2 === 0 ? { error: 'no' } : {}) })
  })
  for (let reload = 0; reload < 1000; reload++) {
    const asked = askToPrepare(primary, config(++generation), { clock, timeoutMs: 10_000, name: 'worker 1' })
    clock.advance(10_000)
    await asked
  }
  assert.deepEqual(primary.listenerCounts(), before)
  assert.equal(clock.pendingTimers, 0)
})
